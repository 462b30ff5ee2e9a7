//! rust/addheader: a Proxy-Wasm plugin in Rust without crates (Debian
//! rustc 1.63, target wasm32-unknown-unknown, ABI marker
//! proxy_abi_version_0_2_1) for host conformance tests.
//!
//! On request headers it reads :path and adds the request header
//! "x-rust-path: <path>". On response headers it removes content-length
//! (unless the response has no body), and on the last response body chunk it
//! appends "\n-- appended by rust/addheader\n" to the response body.
//!
//! Only `env` imports; no WASI. Host-returned buffers are allocated through
//! proxy_on_memory_allocate and freed by the plugin.
//!
//! Build: rustc --edition 2021 --crate-type cdylib --target wasm32-unknown-unknown \
//!   -C opt-level=s -C panic=abort -C strip=symbols -o addheader.wasm addheader.rs

use std::alloc::{alloc, dealloc, Layout};

const STATUS_OK: u32 = 0;
const MAP_REQUEST_HEADERS: u32 = 0;
const MAP_RESPONSE_HEADERS: u32 = 2;
const BUFFER_RESPONSE_BODY: u32 = 1;
const LOG_INFO: u32 = 2;
const ACTION_CONTINUE: u32 = 0;
const APPENDIX: &[u8] = b"\n-- appended by rust/addheader\n";

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, msg: *const u8, len: usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        ret_ptr: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_len: usize) -> u32;
    fn proxy_set_buffer_bytes(
        buffer: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_len: usize,
    ) -> u32;
}

/// A buffer the host allocated through proxy_on_memory_allocate.
struct HostBuf {
    ptr: *mut u8,
    len: usize,
}

impl HostBuf {
    fn bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        if !self.ptr.is_null() && self.len > 0 {
            unsafe { dealloc(self.ptr, Layout::from_size_align_unchecked(self.len, 1)) }
        }
    }
}

fn log(msg: &[u8]) {
    unsafe {
        proxy_log(LOG_INFO, msg.as_ptr(), msg.len());
    }
}

fn get_header(map: u32, key: &[u8]) -> Option<HostBuf> {
    let mut buf = HostBuf { ptr: std::ptr::null_mut(), len: 0 };
    let st = unsafe { proxy_get_header_map_value(map, key.as_ptr(), key.len(), &mut buf.ptr, &mut buf.len) };
    if st == STATUS_OK {
        Some(buf)
    } else {
        None
    }
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    if size == 0 {
        return std::ptr::null_mut();
    }
    unsafe { alloc(Layout::from_size_align_unchecked(size, 1)) }
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_config_len: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root_id: u32, _config_len: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _num_headers: u32, _eos: u32) -> u32 {
    if let Some(path) = get_header(MAP_REQUEST_HEADERS, b":path") {
        let mut line = b"rust/addheader: path=".to_vec();
        line.extend_from_slice(path.bytes());
        log(&line);
        let key = b"x-rust-path";
        let value = path.bytes();
        unsafe {
            proxy_add_header_map_value(MAP_REQUEST_HEADERS, key.as_ptr(), key.len(), value.as_ptr(), value.len());
        }
    }
    ACTION_CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(_context_id: u32, _num_headers: u32, eos: u32) -> u32 {
    if eos == 0 {
        let key = b"content-length";
        unsafe {
            proxy_remove_header_map_value(MAP_RESPONSE_HEADERS, key.as_ptr(), key.len());
        }
    }
    ACTION_CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(_context_id: u32, _body_len: usize, eos: u32) -> u32 {
    if eos != 0 {
        unsafe {
            proxy_set_buffer_bytes(BUFFER_RESPONSE_BODY, 0x7fff_ffff, 0, APPENDIX.as_ptr(), APPENDIX.len());
        }
    }
    ACTION_CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}
