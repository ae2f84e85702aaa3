//! The Linli guest SDK: write a plugin as a router of plain Rust functions, without
//! touching wit-bindgen. See `sdk/README.md` for the five-minute tutorial.
//!
//! ```text
//! use linli_sdk::prelude::*;
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     fn router() -> Router {
//!         Router::new().get("/", |_req, _params| Ok(Response::text(200, "你好")))
//!     }
//! }
//! linli_sdk::export!(Hello);
//! ```

extern crate self as linli_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Raw generated bindings of `linli:platform`. Plugins normally use the typed helpers.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "linli_sdk::bindings",
        runtime_path: "linli_sdk::__wit_bindgen::rt",
    });
}

pub mod base;
pub mod data;
pub mod devices;
mod error;
pub mod events;
pub mod http;
pub mod identity;
pub mod ledger;
pub mod log;
pub mod notify;
mod pages;
mod router;
pub mod tickets;

pub use error::{Error, ErrorCode};
pub use http::{Request, Response};
pub use router::{Params, Router};

/// What a plugin implements: its routes. A fresh instance serves every request, so
/// building the router per request is cheap and keeps plugins free of global state.
pub trait Plugin {
    fn router() -> Router;

    /// A platform event the manifest subscribed to (see [`events`]). `Ok` acknowledges it;
    /// an `Err` has it delivered again later.
    fn on_event(event: events::Event) -> Result<(), Error> {
        let _ = event;
        Ok(())
    }
}

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::data::{Collection, Page, Versioned};
    pub use crate::http::{Request, Response};
    pub use crate::{base, devices, events, identity, ledger, log, notify, tickets, Error, ErrorCode, Params, Plugin, Router};
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::json;
}

#[doc(hidden)]
pub fn __dispatch<P: Plugin>(request: bindings::linli::platform::http_types::Request) -> bindings::linli::platform::http_types::Response {
    P::router().dispatch(Request::from(request)).into()
}

/// Export a [`Plugin`] as the component's `handler`.
#[macro_export]
#[rustfmt::skip] // rustfmt moves the last line of this body out of its block
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            struct __LinliHandler;
            impl $crate::bindings::exports::linli::platform::handler::Guest for __LinliHandler {
                fn handle(request: $crate::bindings::linli::platform::http_types::Request) -> $crate::bindings::linli::platform::http_types::Response {
                    $crate::__dispatch::<$plugin>(request)
                }
            }
            impl $crate::bindings::exports::linli::platform::event_handler::Guest for __LinliHandler {
                fn on_event(event: $crate::events::Event) -> Result<(), $crate::bindings::linli::platform::types::Error> {
                    <$plugin as $crate::Plugin>::on_event(event).map_err(Into::into)
                }
            }
            $crate::bindings::__export_plugin_world!(__LinliHandler with_types_in $crate::bindings);
        };
    };
}
