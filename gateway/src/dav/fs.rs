//! The namespace as a WebDAV file system: each method one or two client
//! calls. Directories are listed a page at a time; puts' temporaries are
//! left out of listings; COPY of a file streams a read of one version
//! into a put, so a failed read never leaves a short copy.

use std::sync::Arc;

use axum::http::StatusCode;
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsStream,
    OpenOptions, ReadDirMeta,
};
use futures::stream::{self, TryStreamExt};
use futures::FutureExt;
use toastyfs_client::ClientError;
use toastyfs_proto::namespace::{EntryInfo, FsError as Refusal};
use toastyfs_proto::FsPath;
use tokio_util::io::StreamReader;

use super::file::{ReadFile, WriteFile};
use super::meta::{fs_error, DirEntry, Meta};
use crate::limits::DEFAULT_LIST_PAGE;
use crate::{pipe, Gateway};

/// The cluster's namespace, served over WebDAV.
#[derive(Clone)]
pub struct ClusterFs {
    gateway: Arc<Gateway>,
}

impl ClusterFs {
    pub fn new(gateway: Arc<Gateway>) -> ClusterFs {
        ClusterFs { gateway }
    }

    async fn stat(&self, path: &FsPath) -> Result<Option<EntryInfo>, FsError> {
        match self.gateway.client.stat(path).await {
            Ok(info) => Ok(Some(info)),
            Err(ClientError::Refused(Refusal::NotFound { .. })) => Ok(None),
            Err(e) => Err(fs_error(e)),
        }
    }

    async fn open_file(
        &self,
        path: &DavPath,
        options: OpenOptions,
    ) -> Result<Box<dyn DavFile>, FsError> {
        let path = fs_path(path)?;
        let existing = self.stat(&path).await?;
        if existing
            .as_ref()
            .is_some_and(|i| i.kind == toastyfs_proto::namespace::EntryKind::Dir)
        {
            return Err(FsError::Forbidden);
        }
        if !options.write {
            let info = existing.ok_or(FsError::NotFound)?;
            let file = ReadFile::new(Arc::clone(&self.gateway), path, Meta::of(&info));
            return Ok(Box::new(file));
        }
        // A put replaces the whole file; writing into the middle (a
        // partial PUT, append) is not offered.
        if options.append || (!options.truncate && existing.as_ref().is_some_and(|i| i.length > 0))
        {
            return Err(FsError::NotImplemented);
        }
        match (&existing, options.create, options.create_new) {
            (Some(_), _, true) => return Err(FsError::Exists),
            (None, false, _) => return Err(FsError::NotFound),
            _ => {}
        }
        let file = WriteFile::start(Arc::clone(&self.gateway), path, options.create_new)?;
        Ok(Box::new(file))
    }

    async fn copy_file(&self, from: &DavPath, to: &DavPath) -> Result<(), FsError> {
        let (from, to) = (fs_path(from)?, fs_path(to)?);
        let info = self.stat(&from).await?.ok_or(FsError::NotFound)?;
        let read = pipe::read_stream(Arc::clone(&self.gateway), from, info.version, 0, None);
        let reader = StreamReader::new(Box::pin(read));
        let chunk_size = Some(info.chunk_size).filter(|size| *size > 0);
        self.gateway
            .client
            .put(&to, reader, false, chunk_size, None)
            .await
            .map_err(fs_error)?;
        Ok(())
    }
}

/// The namespace path of a WebDAV path (its prefix already stripped).
fn fs_path(path: &DavPath) -> Result<FsPath, FsError> {
    let text = std::str::from_utf8(path.as_bytes()).map_err(|_| FsError::Forbidden)?;
    let trimmed = text.trim_end_matches('/');
    FsPath::new(if trimmed.is_empty() { "/" } else { trimmed }).map_err(|_| FsError::Forbidden)
}

/// Every entry of `path`, a page at a time, puts' temporaries left out.
fn entries(gateway: Arc<Gateway>, path: FsPath) -> FsStream<Box<dyn DavDirEntry>> {
    let pages = stream::try_unfold(Some(None), move |after: Option<Option<String>>| {
        let (gateway, path) = (Arc::clone(&gateway), path.clone());
        async move {
            let Some(after) = after else { return Ok(None) };
            let page = gateway
                .client
                .list(&path, after, DEFAULT_LIST_PAGE)
                .await
                .map_err(fs_error)?;
            let next = page.next.map(Some);
            Ok(Some((page.entries, next)))
        }
    });
    let entries = pages
        .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
        .try_flatten()
        .try_filter(|info: &EntryInfo| {
            futures::future::ready(!toastyfs_client::is_upload_temp(&info.name))
        })
        .map_ok(|info| Box::new(DirEntry(info)) as Box<dyn DavDirEntry>);
    Box::pin(entries)
}

impl DavFileSystem for ClusterFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        self.open_file(path, options).boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let path = fs_path(path)?;
            Ok(entries(Arc::clone(&self.gateway), path))
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let info = self.stat(&fs_path(path)?).await?.ok_or(FsError::NotFound)?;
            Ok(Box::new(Meta::of(&info)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn symlink_metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        self.metadata(path)
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            self.gateway
                .client
                .mkdir(&fs_path(path)?, false)
                .await
                .map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove_file(path)
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let path = fs_path(path)?;
            self.gateway
                .client
                .delete(&path, false, None)
                .await
                .map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    /// The handler has already deleted an existing target it may
    /// overwrite, so the rename never replaces anything.
    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (from, to) = (fs_path(from)?, fs_path(to)?);
            self.gateway
                .client
                .rename(&from, &to, false, None)
                .await
                .map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.copy_file(from, to).boxed()
    }

    /// Dead properties are not kept: each is refused with 403, which RFC
    /// 4918 (9.2) allows, and the resource is left unchanged.
    fn patch_props<'a>(
        &'a self,
        _path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        let refused = patch
            .into_iter()
            .map(|(_, prop)| (StatusCode::FORBIDDEN, prop))
            .collect();
        futures::future::ready(Ok(refused)).boxed()
    }
}
