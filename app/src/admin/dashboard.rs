//! The dashboard at `/`: one page and its script and style, compiled into the binary (no CDN, nothing fetched
//! from elsewhere), drawing the actor tree, packet flow per channel, backlog and latency charts and clearing
//! operations from the JSON endpoints, the metrics and the live event stream.

use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// `GET /`
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", "default-src 'self'"))
        .body(INDEX)
}

/// `GET /assets/{name}`
pub async fn asset(name: web::Path<String>) -> HttpResponse {
    let (body, kind) = match name.as_str() {
        "dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        other => {
            return HttpResponse::NotFound()
                .json(serde_json::json!({ "error": format!("no asset {other:?}") }))
        }
    };
    HttpResponse::Ok().content_type(kind).body(body)
}
