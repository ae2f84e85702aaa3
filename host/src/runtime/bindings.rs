//! Host-side bindings generated from wit/. Never edited by hand.
//!
//! Everything is async: guests run on the Tokio workers as fibers, yield at epoch ticks,
//! and host calls (database, later network) await without blocking a thread.
wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});
