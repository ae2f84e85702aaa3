//! The API's extractors: axum's `Json`, `Query` and `Path`, whose rejections are the API's
//! JSON error (`{"error": {"code": "invalid-argument", …}}`) instead of axum's plain text, so
//! a client reads every failure the same way.
use super::{parse_json, ApiError};
use crate::errors::Code;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// A JSON body. Like the rest of the API it does not insist on a `Content-Type`.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parse_json(&read_body(request, state).await?)?))
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = read_body(request, state).await?;
        Ok(Self(if body.is_empty() { T::default() } else { parse_json(&body)? }))
    }
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|e| ApiError::new(e.status(), Code::BodyInvalid, format!("the request body could not be read: {}", e.body_text())))
}

/// The query string.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, Code::QueryInvalid, format!("the query is not valid: {}", e.body_text())))
    }
}

/// The path parameters.
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            // A route without the parameters it reads is the host's mistake, not the caller's.
            Err(e @ PathRejection::MissingPathParams(_)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e.body_text())),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, Code::PathInvalid, format!("the path is not valid: {}", e.body_text()))),
        }
    }
}
