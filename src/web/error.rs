//! The one error type of the web layer. Each variant maps to a status and a
//! message that is safe to show; internal details are logged, never sent.
//! Pages get an HTML error page, `/api` gets `{"detail": "..."}` (Fast-Flow 1.x shape).

use askama::Template;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::runner::TriggerError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A cap is reached (e.g. live streams); try again later.
    #[error("{0}")]
    Unavailable(String),
    /// A request body over its cap.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The credentials (e.g. a webhook key) are wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// A rate limit is reached; the client should slow down.
    #[error("{0}")]
    TooManyRequests(String),
    /// The path exists, not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Logged with its cause; the client only learns that something failed.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::Internal(context.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Internal(context) => {
                format!("internal error while {context}; see the server log")
            }
            other => other.to_string(),
        }
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_disk_full() {
            tracing::error!(error = %e, "the database cannot be written");
            return Self::Unavailable(
                "the database cannot be written: its disk is full (see /ready); nothing was changed"
                    .into(),
            );
        }
        Self::internal("accessing the database", e)
    }
}

impl From<TriggerError> for AppError {
    fn from(e: TriggerError) -> Self {
        match e {
            TriggerError::Invalid(..) => Self::Unprocessable(e.to_string()),
            TriggerError::Disabled(_) => Self::Conflict(e.to_string()),
            TriggerError::UnknownPipeline(_) | TriggerError::UnknownRun(_) => {
                Self::NotFound(e.to_string())
            }
            TriggerError::UnknownRunConfig { .. } => Self::BadRequest(e.to_string()),
            TriggerError::Override(_) => Self::BadRequest(e.to_string()),
            TriggerError::Db(db) => db.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: String,
    message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_string(),
            message: self.message(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}

/// The same errors, as JSON for `/api`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        Self(e.into())
    }
}

impl From<crate::runner::CancelError> for AppError {
    fn from(e: crate::runner::CancelError) -> Self {
        use crate::runner::CancelError;
        match e {
            CancelError::NotFound(_) => Self::NotFound(e.to_string()),
            CancelError::Finished(..) => Self::BadRequest(e.to_string()),
            CancelError::Db(db) => db.into(),
        }
    }
}

impl From<crate::runner::CancelError> for ApiError {
    fn from(e: crate::runner::CancelError) -> Self {
        Self(e.into())
    }
}

impl From<TriggerError> for ApiError {
    fn from(e: TriggerError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0.status(),
            Json(serde_json::json!({ "detail": self.0.message() })),
        )
            .into_response()
    }
}
