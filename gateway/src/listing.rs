//! A directory as a GET answers it: JSON for `Accept: application/json`
//! (one page, with the cursor of the next), else a plain HTML page with a
//! link per entry and a link to the next page.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use toastyfs_client::Client;
use toastyfs_proto::namespace::{EntryInfo, EntryKind, MAX_LIST_PAGE};
use toastyfs_proto::FsPath;

use crate::error::GatewayError;
use crate::files::{header_text, Params};
use crate::limits::DEFAULT_LIST_PAGE;
use crate::url::{encode_path, encode_segment, escape_html};

/// One entry as the JSON listing shows it.
#[derive(Debug, Serialize)]
struct EntryJson<'a> {
    name: &'a str,
    /// "file" or "dir".
    kind: &'static str,
    size: u64,
    version: u64,
    modified_ms: u64,
}

#[derive(Debug, Serialize)]
struct PageJson<'a> {
    path: String,
    entries: Vec<EntryJson<'a>>,
    /// Pass as `?after=` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn kind(entry: &EntryInfo) -> &'static str {
    match entry.kind {
        EntryKind::Dir => "dir",
        EntryKind::File => "file",
    }
}

/// One page of `path`'s entries (puts' temporaries left out).
pub async fn answer(
    client: &Client,
    path: &FsPath,
    headers: &HeaderMap,
    params: &Params,
    head: bool,
) -> Result<Response, GatewayError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIST_PAGE);
    if limit == 0 || limit > MAX_LIST_PAGE {
        return Err(GatewayError::BadRequest(format!(
            "limit {limit}: a page holds 1 to {MAX_LIST_PAGE} entries"
        )));
    }
    let page = client.list(path, params.after.clone(), limit).await?;
    let entries: Vec<&EntryInfo> = page
        .entries
        .iter()
        .filter(|e| !toastyfs_client::is_upload_temp(&e.name))
        .collect();
    let json = header_text(headers, header::ACCEPT).is_some_and(|a| a.contains("application/json"));
    let (body, content_type) = if json {
        let page = PageJson {
            path: path.to_string(),
            entries: entries
                .iter()
                .map(|e| EntryJson {
                    name: &e.name,
                    kind: kind(e),
                    size: e.length,
                    version: e.version.0,
                    modified_ms: e.mtime_ms,
                })
                .collect(),
            next: page.next.clone(),
        };
        let body = serde_json::to_string(&page)
            .map_err(|e| GatewayError::BadRequest(format!("cannot encode the listing: {e}")))?;
        (body, "application/json")
    } else {
        (
            html(path, &entries, page.next.as_deref(), limit),
            "text/html; charset=utf-8",
        )
    };
    let mut response = if head {
        StatusCode::OK.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn html(path: &FsPath, entries: &[&EntryInfo], next: Option<&str>, limit: u32) -> String {
    let base = if path.is_root() {
        String::new()
    } else {
        encode_path(path.as_str())
    };
    let title = escape_html(path.as_str());
    let mut rows = String::new();
    if !path.is_root() {
        rows.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        let slash = if entry.kind == EntryKind::Dir {
            "/"
        } else {
            ""
        };
        let size = match entry.kind {
            EntryKind::Dir => String::new(),
            EntryKind::File => entry.length.to_string(),
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"{base}/{}{slash}\">{}{slash}</a></td><td>{size}</td><td>{}</td></tr>\n",
            encode_segment(&entry.name),
            escape_html(&entry.name),
            crate::conditional::http_date(entry.mtime_ms),
        ));
    }
    let more = next.map_or(String::new(), |after| {
        format!(
            "<p><a href=\"?after={}&amp;limit={limit}\">next page</a></p>\n",
            encode_segment(after)
        )
    });
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n<table>\n<tr><th>name</th><th>bytes</th><th>modified</th></tr>\n{rows}</table>\n{more}</body></html>\n"
    )
}
