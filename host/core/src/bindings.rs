//! Host-side bindings generated from wit/. Never edited by hand. They sit at the bottom of
//! the layers: the capabilities implement their traits, the runtime links and calls them.
//!
//! Everything is async: guests run on the Tokio workers as fibers, yield at epoch ticks,
//! and host calls (database, later network) await without blocking a thread.
//!
//! The host requires the `http-plugin` world of a component and looks for the optional
//! `event-subscriber` part (`on-event`) separately, so components built before events
//! existed still load.
wasmtime::component::bindgen!({
    path: "../../wit",
    world: "http-plugin",
    imports: { default: async },
    exports: { default: async },
});

/// `PluginPre` is the pre-linked `http-plugin` world.
pub type PluginPre<T> = HttpPluginPre<T>;

pub mod subscriber {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "event-subscriber",
        imports: { default: async },
        exports: { default: async },
        with: { "linli:platform/types": super::linli::platform::types },
    });
}
