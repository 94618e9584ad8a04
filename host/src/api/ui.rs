//! `GET /ui`: the operator dashboard, a static page built into the binary.
//!
//! The page and its script hold no data and need no key; the script reads
//! the API (`/v1/stats`, `/v1/alerts`, `/v1/audit`) with a key the operator
//! gives it in the URL fragment (`/ui#key=sbk_…`, never sent to a server)
//! or in its form, and keeps it for the browser tab only. A strict content
//! security policy allows nothing but this host's own script, style and API.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The page, its script and its style.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/dashboard.css"),
    ),
];

/// Only this host's script, style and API; no frames, forms elsewhere or inline code.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

fn serve(name: &str) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(asset, ..)| *asset == name) else {
        return ApiError::route_not_found().into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response()
}

/// The dashboard page.
pub async fn page() -> Response {
    serve("index.html")
}

/// One of the page's files.
pub async fn asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn serves_its_files_under_a_strict_policy_and_nothing_else() {
        let page = page().await;
        assert_eq!(page.status(), StatusCode::OK);
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or_default();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        let script = asset(Path("dashboard.js".into())).await;
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        for missing in ["../Cargo.toml", "index.htm", ""] {
            let response = asset(Path(missing.into())).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
        }
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        let html = ASSETS[0].2;
        for (name, ..) in &ASSETS[1..] {
            assert!(html.contains(&format!("/ui/{name}")), "{name}");
        }
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains(" style="), "no inline style");
    }
}
