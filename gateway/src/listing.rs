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
        rows.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        rows.push_str(&row(&base, entry));
    }
    let more = next.map_or(String::new(), |after| {
        format!(
            "<p><a href=\"?after={}&amp;limit={limit}\">next page</a></p>\n",
            encode_segment(after)
        )
    });
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <link rel=\"stylesheet\" href=\"/ui/style.css\"><script src=\"/ui/app.js\" defer></script></head>\n\
         <body><nav><a href=\"/\">Files</a><a href=\"/ui/cluster\">Cluster</a></nav>\n<h1>{title}</h1>\n{TOOLBAR}\
         <table id=\"entries\">\n<tr><th>name</th><th>bytes</th><th>modified</th><th></th></tr>\n{rows}</table>\n{more}</body></html>\n"
    )
}

/// Upload (picker, drop zone, progress), new directory, and what the
/// last action said; `ui/assets/app.js` wires them.
const TOOLBAR: &str = "<p><input type=\"file\" id=\"pick\" multiple> \
     <input id=\"newdir\" placeholder=\"new directory\"><button id=\"mkdir\">create</button></p>\n\
     <div id=\"drop\">drop files here to upload</div>\n\
     <progress id=\"progress\" max=\"1\" value=\"0\" hidden></progress>\n<p id=\"status\"></p>\n";

/// One entry: its link, size, time, and its download, rename and delete.
fn row(base: &str, entry: &EntryInfo) -> String {
    let dir = entry.kind == EntryKind::Dir;
    let slash = if dir { "/" } else { "" };
    let size = if dir {
        String::new()
    } else {
        entry.length.to_string()
    };
    let href = format!("{base}/{}{slash}", encode_segment(&entry.name));
    let name = escape_html(&entry.name);
    let download = if dir {
        String::new()
    } else {
        format!("<a href=\"{href}\" download=\"{name}\">download</a>")
    };
    format!(
        "<tr data-name=\"{name}\" data-kind=\"{}\"><td><a href=\"{href}\">{name}{slash}</a></td><td class=\"num\">{size}</td><td>{}</td>\
         <td>{download}<button data-action=\"rename\">rename</button><button data-action=\"delete\">delete</button></td></tr>\n",
        kind(entry),
        crate::conditional::http_date(entry.mtime_ms),
    )
}
