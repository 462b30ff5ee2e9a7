// as/addheader: a Proxy-Wasm plugin in AssemblyScript (assemblyscript
// 0.14.13 + @solo-io/proxy-runtime 0.1.8, ABI marker proxy_abi_version_0_2_0)
// for host conformance tests.
//
// On request headers it reads :path and adds the request header
// "x-as-path: <path>". On response headers it adds "x-as-config: <plugin
// configuration>" (the raw configuration string).
//
// The runtime creates a root context with the factory registered under the
// name the property plugin_root_id returns (Istio/Higress set root_id to the
// WasmPlugin's name). This plugin wraps proxy_on_context_create to register
// its factory under whatever plugin_root_id the host reports, so any plugin
// name works; the property must exist (a missing one aborts, as with any
// plugin on this runtime).
//
// onConfigure is overridden: the runtime's own passes configuration_size
// where proxy_get_buffer_bytes expects the return-size pointer, so the host
// writes the size to guest address <configuration_size> (silently corrupting
// low memory) and the configuration reads back empty. This one reads the
// configuration with the correct pointers, so x-as-config is reliable and
// an empty configuration works.

// The runtime's exports (what "@solo-io/proxy-runtime/proxy" re-exports),
// except proxy_on_context_create, which is wrapped below.
export { malloc, free } from "@solo-io/proxy-runtime/malloc";
export {
  proxy_abi_version_0_2_0, proxy_on_vm_start, proxy_validate_configuration, proxy_on_configure,
  proxy_on_tick, proxy_on_foreign_function, proxy_on_queue_ready,
  proxy_on_request_headers, proxy_on_request_body, proxy_on_request_trailers, proxy_on_request_metadata,
  proxy_on_response_headers, proxy_on_response_body, proxy_on_response_trailers, proxy_on_response_metadata,
  proxy_on_http_call_response, proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_trailing_metadata,
  proxy_on_grpc_receive, proxy_on_grpc_close, proxy_on_done, proxy_on_log, proxy_on_delete,
} from "@solo-io/proxy-runtime/exports";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues,
  stream_context, log, LogLevelValues,
} from "@solo-io/proxy-runtime";
import { get_buffer_bytes, get_property } from "@solo-io/proxy-runtime/runtime";
import { proxy_on_context_create as runtime_on_context_create } from "@solo-io/proxy-runtime/exports";

// BufferType PluginConfiguration (spec §1.2).
const PLUGIN_CONFIGURATION = 7;

class AddHeaderRoot extends RootContext {
  config: string = "";

  onConfigure(configuration_size: u32): bool {
    this.config = String.UTF8.decode(get_buffer_bytes(PLUGIN_CONFIGURATION, 0, configuration_size));
    return true;
  }

  createContext(context_id: u32): Context {
    return new AddHeader(context_id, this);
  }
}

class AddHeader extends Context {
  constructor(context_id: u32, root_context: AddHeaderRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(num_headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const path = stream_context.headers.request.get(":path");
    log(LogLevelValues.info, "as/addheader: path=" + path);
    stream_context.headers.request.add("x-as-path", path);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(num_headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as AddHeaderRoot;
    stream_context.headers.response.add("x-as-config", root.config);
    return FilterHeadersStatusValues.Continue;
  }
}

const factory = (context_id: u32): RootContext => new AddHeaderRoot(context_id);

export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  if (root_context_id == 0) {
    registerRootContext(factory, String.UTF8.decode(get_property("plugin_root_id")));
  }
  runtime_on_context_create(context_id, root_context_id);
}
