//! Host-side bindings generated from wit/. Never edited by hand.
wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});
