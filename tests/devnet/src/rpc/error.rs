//! JSON-RPC errors in CometBFT's shape (code, fixed message, free-text `data`), so clients that parse CometBFT
//! errors parse ours.

use serde_json::{json, Value};

/// An error returned to an RPC caller. The `Display` text is what goes into the response's `data` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The body is not JSON, or not a JSON-RPC request (-32700).
    #[error("{0}")]
    Parse(String),
    /// The request is JSON but not a valid request for this endpoint (-32600).
    #[error("{0}")]
    InvalidRequest(String),
    /// No such method (-32601).
    #[error("")]
    MethodNotFound,
    /// The parameters cannot be converted to the method's arguments (-32602).
    #[error("{0}")]
    InvalidParams(String),
    /// The method ran and failed (-32603); CometBFT reports every handler error this way.
    #[error("{0}")]
    Internal(String),
    /// The server gave up on something it had accepted, e.g. a subscription (-32000).
    #[error("{0}")]
    Server(String),
}

impl RpcError {
    /// Shorthand for the most common case: a handler error with a message.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            Self::Parse(_) => -32700,
            Self::InvalidRequest(_) => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams(_) => -32602,
            Self::Internal(_) => -32603,
            Self::Server(_) => -32000,
        }
    }

    /// The fixed message CometBFT puts next to each code.
    pub fn message(&self) -> &'static str {
        match self {
            Self::Parse(_) => "Parse error. Invalid JSON",
            Self::InvalidRequest(_) => "Invalid Request",
            Self::MethodNotFound => "Method not found",
            Self::InvalidParams(_) => "Invalid params",
            Self::Internal(_) => "Internal error",
            Self::Server(_) => "Server error",
        }
    }

    /// The `error` object of a response; `data` is left out when empty, as CometBFT does.
    pub fn to_json(&self) -> Value {
        let data = self.to_string();
        if data.is_empty() {
            json!({ "code": self.code(), "message": self.message() })
        } else {
            json!({ "code": self.code(), "message": self.message(), "data": data })
        }
    }
}

/// A successful JSON-RPC response envelope.
pub fn success(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A failed JSON-RPC response envelope.
pub fn failure(id: &Value, err: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": err.to_json() })
}
