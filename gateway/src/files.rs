//! GET, HEAD, PUT and DELETE of one path. A file is streamed both ways,
//! never held whole: a GET pipes the client's read of one version (the
//! one its entity tag names) into the response body, a PUT pipes the
//! request body into a put through a temporary that is renamed over the
//! target at the end, so a reader never sees half a file.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use toastyfs_client::{Client, ClientError};
use toastyfs_proto::namespace::{EntryInfo, EntryKind, FsError};
use toastyfs_proto::FsPath;
use tokio_util::io::StreamReader;

use crate::conditional::{self, Preconditions, Verdict};
use crate::error::GatewayError;
use crate::limits::CHUNK_SIZE_HEADER;
use crate::range::{self, Wanted};
use crate::{listing, pipe, Gateway};

/// The query string of any request to a path.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// DELETE: a directory and everything in it.
    #[serde(default)]
    pub recursive: bool,
    /// GET of a directory: the page after this name.
    pub after: Option<String>,
    /// GET of a directory: at most this many entries.
    pub limit: Option<u32>,
}

/// The namespace path of a request's URL path (already percent-decoded).
pub fn fs_path(url_path: &str) -> Result<FsPath, GatewayError> {
    let trimmed = url_path.trim_end_matches('/');
    let path = if trimmed.is_empty() { "/" } else { trimmed };
    FsPath::new(path).map_err(|e| GatewayError::BadRequest(format!("bad path {url_path:?}: {e}")))
}

fn preconditions(headers: &HeaderMap) -> Preconditions<'_> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    Preconditions {
        if_match: text(header::IF_MATCH),
        if_none_match: text(header::IF_NONE_MATCH),
        if_modified_since: text(header::IF_MODIFIED_SINCE),
        if_unmodified_since: text(header::IF_UNMODIFIED_SINCE),
    }
}

async fn stat_if_exists(client: &Client, path: &FsPath) -> Result<Option<EntryInfo>, GatewayError> {
    match client.stat(path).await {
        Ok(info) => Ok(Some(info)),
        Err(ClientError::Refused(FsError::NotFound { .. })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// GET and HEAD: a file (ranges, conditionals) or a directory listing.
pub async fn read(
    gateway: Arc<Gateway>,
    method: Method,
    url_path: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, GatewayError> {
    let path = fs_path(url_path)?;
    let client = &gateway.client;
    let info = client.stat(&path).await?;
    if info.kind == EntryKind::Dir {
        return listing::answer(client, &path, headers, params, method == Method::HEAD).await;
    }
    match preconditions(headers).evaluate(Some((info.version, info.mtime_ms)), true) {
        Verdict::Proceed => {}
        Verdict::NotModified => return Ok(not_modified(&info)),
        Verdict::Failed => {
            return Err(GatewayError::PreconditionFailed(format!(
                "{path} is at version {}",
                info.version.0
            )))
        }
    }
    let wanted = if if_range_holds(headers, &info) {
        range::parse(header_text(headers, header::RANGE), info.length)
    } else {
        Wanted::Whole
    };
    let (status, start, len) = match wanted {
        Wanted::Whole => (StatusCode::OK, 0, info.length),
        Wanted::Part { start, len } => (StatusCode::PARTIAL_CONTENT, start, len),
        Wanted::Unsatisfiable => return Ok(unsatisfiable(&info)),
    };
    let mut response = if method == Method::HEAD || len == 0 {
        Response::new(Body::empty())
    } else {
        Response::new(stream_file(Arc::clone(&gateway), path, &info, start, len))
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    file_headers(headers, &info);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {start}-{}/{}", start + len - 1, info.length);
        if let Ok(value) = HeaderValue::from_str(&range) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

pub fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `If-Range`: the range only if the file is still the version named.
fn if_range_holds(headers: &HeaderMap, info: &EntryInfo) -> bool {
    match header_text(headers, header::IF_RANGE) {
        None => true,
        Some(tag) => conditional::version_of(tag) == Some(info.version),
    }
}

fn file_headers(headers: &mut HeaderMap, info: &EntryInfo) {
    let pairs = [
        (header::ETAG, conditional::etag(info.version)),
        (header::LAST_MODIFIED, conditional::http_date(info.mtime_ms)),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

fn not_modified(info: &EntryInfo) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    file_headers(response.headers_mut(), info);
    response.headers_mut().remove(header::CONTENT_TYPE);
    response
}

fn unsatisfiable(info: &EntryInfo) -> Response {
    let body = format!(
        "no byte of the range is in the file ({} bytes)\n",
        info.length
    );
    let mut response = (StatusCode::RANGE_NOT_SATISFIABLE, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", info.length)) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// The bytes `[start, start + len)` of the version `info` names. A read
/// that fails midway ends the body with an error, short of its
/// `Content-Length`, so the client sees a broken transfer, never a
/// silently short file.
fn stream_file(
    gateway: Arc<Gateway>,
    path: FsPath,
    info: &EntryInfo,
    start: u64,
    len: u64,
) -> Body {
    Body::from_stream(pipe::read_stream(
        gateway,
        path,
        info.version,
        start,
        Some(len),
    ))
}

/// PUT: a file from the body (or, with a trailing slash, a directory).
pub async fn write(
    gateway: Arc<Gateway>,
    url_path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let path = fs_path(url_path)?;
    let client = &gateway.client;
    let existing = stat_if_exists(client, &path).await?;
    if url_path.ends_with('/') {
        if existing.is_some_and(|i| i.kind == EntryKind::Dir) {
            return Ok(StatusCode::OK.into_response());
        }
        client.mkdir(&path, false).await.map_err(in_parent(&path))?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if existing.as_ref().is_some_and(|i| i.kind == EntryKind::Dir) {
        return Err(ClientError::Refused(FsError::IsADirectory {
            path: path.to_string(),
        })
        .into());
    }
    let conditions = preconditions(headers);
    let current = existing.as_ref().map(|i| (i.version, i.mtime_ms));
    if conditions.evaluate(current, false) != Verdict::Proceed {
        return Err(GatewayError::PreconditionFailed(match &existing {
            Some(info) => format!("{path} is at version {}", info.version.0),
            None => format!("{path} does not exist"),
        }));
    }
    let chunk_size = match header_text(headers, CHUNK_SIZE_HEADER) {
        None => None,
        Some(text) => Some(chunk_size(text)?),
    };
    let create_only = conditions.if_none_match.is_some_and(|l| l.trim() == "*");
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = StreamReader::new(stream);
    let temp = toastyfs_client::upload_temp_path(&path)?;
    let written = client
        .put_via(&path, &temp, reader, create_only, chunk_size, None)
        .await
        .map_err(in_parent(&path))?;
    let status = if existing.is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    };
    let mut response = status.into_response();
    if let Ok(tag) = HeaderValue::from_str(&conditional::etag(written.version)) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

/// A missing parent is a conflict for a PUT (RFC 9110): the client must
/// create it first.
fn in_parent(path: &FsPath) -> impl Fn(ClientError) -> GatewayError + '_ {
    move |e| {
        match e {
        ClientError::Refused(FsError::NotFound { .. }) => GatewayError::Conflict(format!(
            "the parent directory of {path} does not exist; create it first (PUT with a trailing slash)"
        )),
        other => other.into(),
    }
    }
}

fn chunk_size(text: &str) -> Result<u32, GatewayError> {
    let size: u32 = text.trim().parse().map_err(|_| {
        GatewayError::BadRequest(format!(
            "{CHUNK_SIZE_HEADER}: {text:?} is not a number of bytes"
        ))
    })?;
    toastyfs_proto::namespace::check_chunk_size(size)
        .map_err(|e| GatewayError::BadRequest(format!("{CHUNK_SIZE_HEADER}: {e}")))?;
    Ok(size)
}

/// DELETE: a file or an empty directory; any directory with
/// `?recursive=true`; `If-Match` makes it conditional.
pub async fn delete(
    gateway: Arc<Gateway>,
    url_path: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, GatewayError> {
    let path = fs_path(url_path)?;
    let expect = match header_text(headers, header::IF_MATCH) {
        None => None,
        Some(tag) => Some(conditional::version_of(tag).ok_or_else(|| {
            GatewayError::BadRequest(format!("If-Match {tag:?} names no version of ours"))
        })?),
    };
    gateway
        .client
        .delete(&path, params.recursive, expect)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
