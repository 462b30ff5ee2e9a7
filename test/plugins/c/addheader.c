// c/addheader: a Proxy-Wasm plugin in plain C (clang 14 + wasi-libc,
// reactor, ABI marker proxy_abi_version_0_2_1) for host conformance tests.
//
// On request headers it reads :path and adds the request header
// "x-c-path: <path>". A request whose path is exactly /c/deny is answered
// locally instead: 403, body "denied by c/addheader\n", header
// "x-c-local: 1", details "c_addheader_denied".
//
// It exports only the callbacks it needs (no body, response, log or tick
// callbacks) and allocates host-returned buffers with malloc through
// proxy_on_memory_allocate.
//
// Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all -o addheader.wasm addheader.c

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

enum { STATUS_OK = 0 };
enum { MAP_REQUEST_HEADERS = 0 };
enum { LOG_INFO = 2, LOG_WARN = 3 };
enum { ACTION_CONTINUE = 0, ACTION_PAUSE = 1 };

IMPORT(proxy_log)
int32_t proxy_log(int32_t level, const char *msg, int32_t len);

IMPORT(proxy_get_header_map_value)
int32_t proxy_get_header_map_value(int32_t map, const char *key, int32_t key_len,
                                   char **ret_ptr, int32_t *ret_len);

IMPORT(proxy_add_header_map_value)
int32_t proxy_add_header_map_value(int32_t map, const char *key, int32_t key_len,
                                   const char *value, int32_t value_len);

IMPORT(proxy_send_local_response)
int32_t proxy_send_local_response(int32_t status, const char *details, int32_t details_len,
                                  const char *body, int32_t body_len,
                                  const char *headers, int32_t headers_len, int32_t grpc_status);

EXPORT(proxy_abi_version_0_2_1)
void proxy_abi_version_0_2_1(void) {}

EXPORT(proxy_on_memory_allocate)
void *proxy_on_memory_allocate(int32_t size) { return malloc((size_t)size); }

EXPORT(proxy_on_context_create)
void proxy_on_context_create(int32_t context_id, int32_t parent_id) {
  (void)context_id;
  (void)parent_id;
}

EXPORT(proxy_on_vm_start)
int32_t proxy_on_vm_start(int32_t root_id, int32_t vm_config_len) {
  (void)root_id;
  (void)vm_config_len;
  return 1;
}

EXPORT(proxy_on_configure)
int32_t proxy_on_configure(int32_t root_id, int32_t config_len) {
  (void)root_id;
  (void)config_len;
  return 1;
}

static void log_str(int32_t level, const char *prefix, const char *s, int32_t n) {
  char line[256];
  int32_t p = (int32_t)strlen(prefix);
  if (n > (int32_t)sizeof line - p) n = (int32_t)sizeof line - p;
  memcpy(line, prefix, (size_t)p);
  memcpy(line + p, s, (size_t)n);
  proxy_log(level, line, p + n);
}

// put_u32 writes a little-endian u32, as the pairs serialization needs.
static char *put_u32(char *p, uint32_t v) {
  p[0] = (char)(v & 0xff);
  p[1] = (char)((v >> 8) & 0xff);
  p[2] = (char)((v >> 16) & 0xff);
  p[3] = (char)((v >> 24) & 0xff);
  return p + 4;
}

static void deny(void) {
  static const char key[] = "x-c-local", value[] = "1";
  static const char details[] = "c_addheader_denied";
  static const char body[] = "denied by c/addheader\n";
  char pairs[4 + 8 + sizeof key + sizeof value];  // one pair, NULs included
  char *p = put_u32(pairs, 1);
  p = put_u32(p, sizeof key - 1);
  p = put_u32(p, sizeof value - 1);
  memcpy(p, key, sizeof key);
  p += sizeof key;
  memcpy(p, value, sizeof value);
  int32_t st = proxy_send_local_response(403, details, sizeof details - 1, body, sizeof body - 1,
                                         pairs, (int32_t)sizeof pairs, -1);
  if (st != STATUS_OK) {
    static const char msg[] = "c/addheader: send_local_response failed";
    proxy_log(LOG_WARN, msg, sizeof msg - 1);
  }
}

EXPORT(proxy_on_request_headers)
int32_t proxy_on_request_headers(int32_t context_id, int32_t num_headers, int32_t end_of_stream) {
  (void)context_id;
  (void)num_headers;
  (void)end_of_stream;
  char *path = NULL;
  int32_t len = 0;
  if (proxy_get_header_map_value(MAP_REQUEST_HEADERS, ":path", 5, &path, &len) != STATUS_OK) {
    static const char msg[] = "c/addheader: no :path";
    proxy_log(LOG_WARN, msg, sizeof msg - 1);
    return ACTION_CONTINUE;
  }
  log_str(LOG_INFO, "c/addheader: path=", path, len);
  int32_t action = ACTION_CONTINUE;
  if (len == 7 && memcmp(path, "/c/deny", 7) == 0) {
    deny();
    action = ACTION_PAUSE;
  } else {
    proxy_add_header_map_value(MAP_REQUEST_HEADERS, "x-c-path", 8, path, len);
  }
  free(path);
  return action;
}

EXPORT(proxy_on_done)
int32_t proxy_on_done(int32_t context_id) {
  (void)context_id;
  return 1;
}

EXPORT(proxy_on_delete)
void proxy_on_delete(int32_t context_id) { (void)context_id; }
