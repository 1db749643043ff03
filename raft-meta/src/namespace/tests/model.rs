//! A deliberately simple reference model of the namespace for property
//! tests: one `BTreeMap` from full path to entry, eager deletes, no
//! inodes and no key layout. The real state machine must give the same
//! results and the same tree.

use std::collections::BTreeMap;

use toastyfs_proto::namespace::*;
use toastyfs_proto::{ChunkHash, ClientId, FsPath, Seq, SessionTag, Version};

use crate::namespace::NamespaceConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MEntry {
    pub kind: EntryKind,
    pub version: Version,
    pub mtime_ms: u64,
    pub chunk_size: u32,
    pub length: u64,
    pub chunks: BTreeMap<u64, ChunkHash>,
    /// The whole content, for a file that keeps it inline.
    pub inline: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub config: NamespaceConfig,
    pub root: MEntry,
    pub entries: BTreeMap<String, MEntry>,
    pub version: u64,
    pub refs: BTreeMap<ChunkHash, u64>,
    /// Condemned chunks (unreferenced, may be deleted).
    pub garbage: std::collections::BTreeSet<ChunkHash>,
    /// When each lifted condemnation was lifted, and the fence of expired
    /// lift records.
    pub lifted: BTreeMap<ChunkHash, u64>,
    pub fence: u64,
    index: u64,
    placed_at: u64,
    pub settings: toastyfs_proto::namespace::ClusterSettings,
    pub sessions: BTreeMap<ClientId, (Seq, u64, CommandResult)>,
    freed: Vec<ChunkHash>,
    time_ms: u64,
    /// Client keys by id, with their secret hashes.
    pub keys: BTreeMap<KeyId, (KeyInfo, [u8; 32])>,
}

use toastyfs_proto::chunk_token::REVOCATION_NOTICE_MS;
use toastyfs_proto::client_key::{Access, KeyId, KeyInfo, MAX_KEYS};

type R<T> = Result<T, FsError>;

fn nf(p: &str) -> FsError {
    FsError::NotFound { path: p.to_owned() }
}

/// The prefixes of a path: "/a/b" -> ["/a", "/a/b"].
fn prefixes(path: &FsPath) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in path.components() {
        cur.push('/');
        cur.push_str(c);
        out.push(cur.clone());
    }
    out
}

fn parent_of(p: &str) -> String {
    match p.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => p[..i].to_owned(),
    }
}

fn is_under(p: &str, dir: &str) -> bool {
    dir == "/" || p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

impl Model {
    pub fn new(config: NamespaceConfig) -> Model {
        let root = MEntry {
            kind: EntryKind::Dir,
            version: Version(0),
            mtime_ms: 0,
            chunk_size: 0,
            length: 0,
            chunks: BTreeMap::new(),
            inline: None,
        };
        Model {
            config,
            root,
            entries: BTreeMap::new(),
            version: 0,
            refs: BTreeMap::new(),
            garbage: Default::default(),
            lifted: BTreeMap::new(),
            fence: 0,
            index: 0,
            placed_at: 0,
            settings: Default::default(),
            sessions: BTreeMap::new(),
            keys: BTreeMap::new(),
            freed: vec![],
            time_ms: 0,
        }
    }

    /// The index of the last applied proposal.
    pub fn applied_index(&self) -> u64 {
        self.index
    }

    fn get(&self, p: &str) -> Option<&MEntry> {
        if p == "/" {
            Some(&self.root)
        } else {
            self.entries.get(p)
        }
    }

    fn get_mut(&mut self, p: &str) -> &mut MEntry {
        if p == "/" {
            &mut self.root
        } else {
            self.entries.get_mut(p).expect("model entry")
        }
    }

    /// Like the real lookup: `Ok(None)` if only the last component is missing.
    pub fn resolve(&self, path: &FsPath) -> R<Option<MEntry>> {
        let ps = prefixes(path);
        if ps.is_empty() {
            return Ok(Some(self.root.clone()));
        }
        for (i, p) in ps.iter().enumerate() {
            let parent = if i == 0 {
                "/".to_owned()
            } else {
                ps[i - 1].clone()
            };
            if self.get(&parent).map(|e| e.kind) != Some(EntryKind::Dir) {
                return Err(FsError::NotADirectory { path: parent });
            }
            if self.get(p).is_none() {
                return if i + 1 == ps.len() {
                    Ok(None)
                } else {
                    Err(nf(p))
                };
            }
        }
        Ok(self.get(path.as_str()).cloned())
    }

    fn lookup(&self, path: &FsPath) -> R<MEntry> {
        self.resolve(path)?.ok_or_else(|| nf(path.as_str()))
    }

    fn lookup_dir(&self, path: &FsPath) -> R<MEntry> {
        let e = self.lookup(path)?;
        if e.kind != EntryKind::Dir {
            return Err(FsError::NotADirectory {
                path: path.to_string(),
            });
        }
        Ok(e)
    }

    fn expect(path: &str, expect: Option<Version>, actual: Version) -> R<()> {
        match expect {
            Some(e) if e != actual => Err(FsError::VersionMismatch {
                path: path.to_owned(),
                expected: e,
                actual,
            }),
            _ => Ok(()),
        }
    }

    fn bump(&mut self) -> Version {
        self.version += 1;
        Version(self.version)
    }

    fn touch(&mut self, dir: &str, v: Version) {
        let t = self.time_ms;
        let e = self.get_mut(dir);
        e.version = v;
        e.mtime_ms = t;
    }

    fn incref(&mut self, h: ChunkHash) {
        if !self.refs.contains_key(&h) {
            self.lift(h);
        }
        *self.refs.entry(h).or_default() += 1;
        self.freed.retain(|x| *x != h);
    }

    /// Lifts a condemnation; whether there was one.
    fn lift(&mut self, h: ChunkHash) -> bool {
        let had = self.garbage.remove(&h);
        if had {
            self.lifted.insert(h, self.index);
        }
        had
    }

    /// The collection check of a write placed at `self.placed_at`.
    fn check_placed(&self, hashes: &[ChunkHash]) -> R<()> {
        for h in hashes {
            if self.refs.contains_key(h) {
                continue;
            }
            let lifted_after = self.lifted.get(h).is_some_and(|at| *at > self.placed_at);
            if self.garbage.contains(h) || lifted_after || self.fence > self.placed_at {
                return Err(FsError::ChunkCollected { hash: *h });
            }
        }
        Ok(())
    }

    fn expire_lifts(&mut self, index: u64) {
        let mut order: Vec<(u64, ChunkHash)> = self.lifted.iter().map(|(h, i)| (*i, *h)).collect();
        order.sort();
        for (at, h) in order.into_iter().take(self.config.expire_per_apply) {
            if at.saturating_add(self.config.lift_ttl_entries) >= index {
                break;
            }
            self.lifted.remove(&h);
            self.fence = self.fence.max(at);
        }
    }

    fn batch(hashes: &[ChunkHash]) -> R<()> {
        if hashes.len() > MAX_CHUNKS_PER_OP {
            return Err(FsError::TooManyChunks {
                count: hashes.len() as u64,
            });
        }
        Ok(())
    }

    fn decref(&mut self, h: ChunkHash) {
        let c = self.refs.get_mut(&h).expect("model ref");
        *c -= 1;
        if *c == 0 {
            self.refs.remove(&h);
            self.garbage.insert(h);
            self.freed.push(h);
        }
    }

    fn children(&self, dir: &str) -> Vec<(String, MEntry)> {
        let mut v: Vec<(String, MEntry)> = self
            .entries
            .iter()
            .filter(|(p, _)| parent_of(p) == dir && p.as_str() != "/")
            .map(|(p, e)| {
                (
                    p.rsplit('/').next().unwrap_or_default().to_owned(),
                    e.clone(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        v
    }

    fn remove_tree(&mut self, p: &str) {
        let doomed: Vec<String> = self
            .entries
            .keys()
            .filter(|k| is_under(k, p))
            .cloned()
            .collect();
        for k in doomed {
            let e = self.entries.remove(&k).expect("model entry");
            for h in e.chunks.values() {
                self.decref(*h);
            }
        }
    }

    pub fn apply(&mut self, index: u64, proposal: &Proposal) -> CommandResult {
        self.time_ms = proposal.time_ms;
        self.index = index;
        self.placed_at = 0;
        let result = match proposal.session {
            None => self.execute(&proposal.command),
            Some(tag) => self.with_session(index, tag, &proposal.command),
        };
        self.expire(index);
        self.expire_lifts(index);
        result
    }

    fn with_session(&mut self, index: u64, tag: SessionTag, command: &Command) -> CommandResult {
        match self.sessions.get(&tag.client) {
            Some((last, _, res)) if *last == tag.seq => return res.clone(),
            Some((last, _, _)) if tag.seq < *last => {
                return Err(FsError::StaleSequence {
                    client: tag.client,
                    seq: tag.seq,
                    last: *last,
                })
            }
            Some(_) => {}
            None => return Err(FsError::SessionExpired { client: tag.client }),
        }
        let result = self.execute(command);
        self.sessions
            .insert(tag.client, (tag.seq, index, result.clone()));
        result
    }

    /// Opens a session under the registration's index.
    fn register(&mut self) -> CommandResult {
        if self.sessions.len() as u64 >= self.config.max_sessions {
            if let Some(oldest) = self.oldest_sessions().first() {
                self.sessions.remove(&oldest.1);
            }
        }
        let client = ClientId(self.index);
        let result = Ok(Outcome::Registered { client });
        self.sessions
            .insert(client, (Seq(0), self.index, result.clone()));
        result
    }

    fn oldest_sessions(&self) -> Vec<(u64, ClientId)> {
        let mut v: Vec<(u64, ClientId)> = self
            .sessions
            .iter()
            .map(|(c, (_, i, _))| (*i, *c))
            .collect();
        v.sort();
        v
    }

    fn expire(&mut self, index: u64) {
        for (last, client) in self
            .oldest_sessions()
            .into_iter()
            .take(self.config.expire_per_apply)
        {
            if last.saturating_add(self.config.session_ttl_entries) >= index {
                break;
            }
            self.sessions.remove(&client);
        }
    }

    /// The slots a guarded command names still hold what it expects.
    fn check_guard(&self, checks: &[SlotCheck], command: &Command) -> R<()> {
        let path = match command {
            Command::WriteCommit(w) => &w.path,
            Command::Truncate { path, .. } => path,
            _ => {
                return Err(FsError::InvalidGuard {
                    reason: "only a write commit or a truncation can be guarded".into(),
                })
            }
        };
        if checks.len() > MAX_GUARD_CHECKS {
            return Err(FsError::InvalidGuard {
                reason: format!("{} slot checks; at most {MAX_GUARD_CHECKS}", checks.len()),
            });
        }
        let file = self
            .entries
            .get(path.as_str())
            .filter(|e| e.kind == EntryKind::File);
        for check in checks {
            let holds = file.and_then(|f| f.chunks.get(&check.index).copied());
            if holds != check.holds {
                return Err(FsError::ChunkChanged {
                    path: path.to_string(),
                    index: check.index,
                });
            }
        }
        Ok(())
    }

    fn execute(&mut self, command: &Command) -> CommandResult {
        self.freed.clear();
        let r = match command {
            Command::CreateDir {
                path,
                parents,
                expect,
            } => self.create_dir(path, *parents, *expect),
            Command::CreateFile {
                path,
                chunk_size,
                expect,
            } => self.create_file(path, *chunk_size, *expect),
            Command::Delete {
                path,
                recursive,
                expect,
            } => self.delete(path, *recursive, *expect),
            Command::WriteCommit(w) => self.write(w),
            Command::Rename {
                from,
                to,
                replace,
                expect,
            } => self.rename(from, to, *replace, *expect),
            Command::Truncate {
                path,
                length,
                cut_chunk,
                expect,
            } => self.truncate(path, *length, *cut_chunk, *expect),
            Command::RegisterClient => self.register(),
            Command::CreateKey {
                name,
                access,
                secret_hash,
            } => self.create_key(name, *access, *secret_hash),
            Command::RevokeKey { id } => self.revoke_key(*id),
            Command::Reclaim => Ok(Outcome::Reclaimed {
                freed: vec![],
                pending: false,
            }),
            Command::SetReplicationFactor { factor, expect } => {
                self.set_replication_factor(*factor, *expect)
            }
            Command::SetMinCopies { copies, expect } => self.set_min_copies(*copies, *expect),
            Command::WriteInline(w) => self.write_inline(w),
            Command::SetInlineMax { bytes, expect } => {
                if *bytes > MAX_INLINE_BYTES {
                    Err(FsError::InvalidInlineMax { bytes: *bytes })
                } else {
                    self.change_settings(*expect, |s| s.inline_max_bytes = *bytes)
                }
            }
            Command::Guarded { checks, command } => match self.check_guard(checks, command) {
                Ok(()) => return self.execute(command),
                Err(e) => Err(e),
            },
            Command::ForgetGarbage { hashes } => Self::batch(hashes).map(|()| {
                let count = hashes.iter().filter(|h| self.lift(**h)).count();
                Outcome::GarbageForgotten {
                    count: count as u64,
                }
            }),
            Command::Pardon { hashes } => Self::batch(hashes).map(|()| {
                let count = hashes.iter().filter(|h| self.lift(**h)).count();
                Outcome::Pardoned {
                    count: count as u64,
                }
            }),
            Command::Condemn { hashes } => Self::batch(hashes).map(|()| {
                let mut count = 0;
                for h in hashes {
                    if !self.refs.contains_key(h) && self.garbage.insert(*h) {
                        count += 1;
                    }
                }
                Outcome::Condemned { count }
            }),
            Command::Placed { placed_at, command } => {
                let inner = match &**command {
                    Command::Guarded { command, .. } => command,
                    other => other,
                };
                if !matches!(inner, Command::WriteCommit(_) | Command::Truncate { .. }) {
                    Err(FsError::InvalidGuard {
                        reason: "only a write commit or a truncation carries a placement".into(),
                    })
                } else {
                    self.placed_at = *placed_at;
                    return self.execute(command);
                }
            }
        };
        let mut freed = std::mem::take(&mut self.freed);
        freed.sort();
        r.map(|o| match o {
            Outcome::Deleted { version, .. } => Outcome::Deleted { version, freed },
            Outcome::Written {
                version,
                file_length,
                bytes_written,
                ..
            } => Outcome::Written {
                version,
                file_length,
                bytes_written,
                freed,
            },
            Outcome::Renamed { version, .. } => Outcome::Renamed { version, freed },
            Outcome::Truncated { version, .. } => Outcome::Truncated { version, freed },
            other => other,
        })
    }

    fn new_entry(&self, kind: EntryKind, v: Version, cs: u32) -> MEntry {
        MEntry {
            kind,
            version: v,
            mtime_ms: self.time_ms,
            chunk_size: cs,
            length: 0,
            chunks: BTreeMap::new(),
            inline: None,
        }
    }

    fn create_dir(
        &mut self,
        path: &FsPath,
        parents: bool,
        expect: Option<Version>,
    ) -> CommandResult {
        let ps = prefixes(path);
        let mut depth = 0;
        for (i, p) in ps.iter().enumerate() {
            match self.get(p) {
                None => break,
                Some(e) if e.kind == EntryKind::File && i + 1 < ps.len() => {
                    return Err(FsError::NotADirectory { path: p.clone() })
                }
                Some(_) => depth = i + 1,
            }
        }
        let n = ps.len();
        if depth == n {
            let e = self.get(path.as_str()).expect("exists");
            return match (parents, e.kind) {
                (true, EntryKind::Dir) => Ok(Outcome::Created { version: e.version }),
                (true, EntryKind::File) => Err(FsError::NotADirectory {
                    path: path.to_string(),
                }),
                (false, _) => Err(FsError::AlreadyExists {
                    path: path.to_string(),
                }),
            };
        }
        if !parents && depth + 1 < n {
            return Err(nf(&ps[depth]));
        }
        let deepest = if depth == 0 {
            "/".to_owned()
        } else {
            ps[depth - 1].clone()
        };
        let pv = if depth + 1 == n {
            self.get(&deepest).expect("exists").version
        } else {
            Version(0)
        };
        Self::expect(&parent_of(path.as_str()), expect, pv)?;
        let v = self.bump();
        for p in &ps[depth..] {
            let e = self.new_entry(EntryKind::Dir, v, 0);
            self.entries.insert(p.clone(), e);
        }
        self.touch(&deepest, v);
        Ok(Outcome::Created { version: v })
    }

    fn create_file(&mut self, path: &FsPath, cs: u32, expect: Option<Version>) -> CommandResult {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&cs) {
            return Err(FsError::InvalidChunkSize { size: cs });
        }
        let Some((parent, _)) = path.split_last() else {
            return Err(FsError::AlreadyExists { path: "/".into() });
        };
        let pe = self.lookup_dir(&parent)?;
        Self::expect(parent.as_str(), expect, pe.version)?;
        if self.get(path.as_str()).is_some() {
            return Err(FsError::AlreadyExists {
                path: path.to_string(),
            });
        }
        let v = self.bump();
        let e = self.new_entry(EntryKind::File, v, cs);
        self.entries.insert(path.to_string(), e);
        self.touch(parent.as_str(), v);
        Ok(Outcome::Created { version: v })
    }

    fn delete(&mut self, path: &FsPath, recursive: bool, expect: Option<Version>) -> CommandResult {
        if path.is_root() {
            return Err(FsError::RootNotAllowed {
                action: "deleted".into(),
            });
        }
        let e = self.lookup(path)?;
        Self::expect(path.as_str(), expect, e.version)?;
        if e.kind == EntryKind::Dir && !recursive && !self.children(path.as_str()).is_empty() {
            return Err(FsError::NotEmpty {
                path: path.to_string(),
            });
        }
        let v = self.bump();
        self.remove_tree(path.as_str());
        self.touch(&parent_of(path.as_str()), v);
        Ok(Outcome::Deleted {
            version: v,
            freed: vec![],
        })
    }

    fn write(&mut self, w: &WriteCommit) -> CommandResult {
        let Some(end) = w
            .offset
            .checked_add(w.length)
            .filter(|e| *e <= MAX_FILE_LENGTH)
        else {
            return Err(FsError::FileTooLarge {
                length: w.offset.saturating_add(w.length),
            });
        };
        if w.path.is_root() {
            return Err(FsError::IsADirectory { path: "/".into() });
        }
        let (existing, cs) = self.write_target(&w.path, w.create_with_chunk_size)?;
        let actual = existing.as_ref().map_or(Version(0), |e| e.version);
        Self::expect(w.path.as_str(), w.expect, actual)?;
        if w.length == 0 && !w.chunks.is_empty() {
            return Err(FsError::EmptyWriteWithChunks);
        }
        let cs64 = u64::from(cs);
        if w.length > 0 {
            let count = (w.offset + w.length - 1) / cs64 - w.offset / cs64 + 1;
            if count > MAX_CHUNKS_PER_OP as u64 {
                return Err(FsError::TooManyChunks { count });
            }
            if count != w.chunks.len() as u64 {
                return Err(FsError::ChunkCountMismatch {
                    expected: count,
                    got: w.chunks.len() as u64,
                });
            }
        } else if let Some(e) = &existing {
            return Ok(Outcome::Written {
                version: actual,
                file_length: e.length,
                bytes_written: 0,
                freed: vec![],
            });
        }
        if let Some(e) = existing.as_ref().filter(|e| e.inline.is_some()) {
            if w.offset != 0 || end < e.length {
                return Err(FsError::InlineContent {
                    path: w.path.to_string(),
                });
            }
        }
        self.check_placed(&w.chunks)?;
        let v = self.bump();
        if existing.is_none() {
            let e = self.new_entry(EntryKind::File, v, cs);
            self.entries.insert(w.path.to_string(), e);
            self.touch(&parent_of(w.path.as_str()), v);
        }
        self.get_mut(w.path.as_str()).inline = None;
        let first = w.offset / cs64;
        let mut released = vec![];
        for (i, h) in w.chunks.iter().enumerate() {
            let old = self
                .get_mut(w.path.as_str())
                .chunks
                .insert(first + i as u64, *h);
            released.extend(old);
            self.incref(*h);
        }
        for h in released {
            self.decref(h);
        }
        let t = self.time_ms;
        let e = self.get_mut(w.path.as_str());
        e.length = e.length.max(end);
        e.version = v;
        e.mtime_ms = t;
        let len = e.length;
        Ok(Outcome::Written {
            version: v,
            file_length: len,
            bytes_written: w.length,
            freed: vec![],
        })
    }

    fn truncate(
        &mut self,
        path: &FsPath,
        length: u64,
        cut: Option<ChunkHash>,
        expect: Option<Version>,
    ) -> CommandResult {
        if length > MAX_FILE_LENGTH {
            return Err(FsError::FileTooLarge { length });
        }
        let e = self.lookup(path)?;
        if e.kind == EntryKind::Dir {
            return Err(FsError::IsADirectory {
                path: path.to_string(),
            });
        }
        Self::expect(path.as_str(), expect, e.version)?;
        if let Some(content) = &e.inline {
            return self.truncate_inline(path, content.clone(), length, cut.is_some());
        }
        let cs = u64::from(e.chunk_size);
        let old_slots = e.length.div_ceil(cs);
        let new_slots = length.div_ceil(cs);
        let released = old_slots.saturating_sub(new_slots);
        if released > MAX_CHUNKS_PER_OP as u64 {
            return Err(FsError::TooManyChunks { count: released });
        }
        let cut_index = (length < e.length && !length.is_multiple_of(cs)).then_some(length / cs);
        let cut_exists = cut_index.is_some_and(|i| e.chunks.contains_key(&i));
        match (cut_exists, cut) {
            (true, None) => {
                return Err(FsError::TruncateNeedsCutChunk {
                    path: path.to_string(),
                    length,
                })
            }
            (false, Some(_)) => {
                return Err(FsError::UnexpectedCutChunk {
                    path: path.to_string(),
                    length,
                })
            }
            _ => {}
        }
        self.check_placed(cut.as_slice())?;
        let v = self.bump();
        if let (Some(i), Some(h)) = (cut_index, cut) {
            let old = self.get_mut(path.as_str()).chunks.insert(i, h);
            self.incref(h);
            if let Some(o) = old {
                self.decref(o);
            }
        }
        let dropped: Vec<ChunkHash> = {
            let entry = self.get_mut(path.as_str());
            let tail = entry.chunks.split_off(&new_slots);
            tail.into_values().collect()
        };
        for h in dropped {
            self.decref(h);
        }
        self.stamp(path.as_str(), length, v);
        Ok(Outcome::Truncated {
            version: v,
            freed: vec![],
        })
    }

    /// A file a command changed: its new length, version and time.
    fn stamp(&mut self, path: &str, length: u64, v: Version) {
        let t = self.time_ms;
        let e = self.get_mut(path);
        e.length = length;
        e.version = v;
        e.mtime_ms = t;
    }

    fn truncate_inline(
        &mut self,
        path: &FsPath,
        mut content: Vec<u8>,
        length: u64,
        cut_given: bool,
    ) -> CommandResult {
        if cut_given {
            return Err(FsError::UnexpectedCutChunk {
                path: path.to_string(),
                length,
            });
        }
        if length > content.len() as u64 && length > u64::from(self.settings.inline_max_bytes) {
            return Err(FsError::InlineContent {
                path: path.to_string(),
            });
        }
        content.resize(length as usize, 0);
        let v = self.bump();
        self.get_mut(path.as_str()).inline = (!content.is_empty()).then_some(content);
        self.stamp(path.as_str(), length, v);
        Ok(Outcome::Truncated {
            version: v,
            freed: vec![],
        })
    }

    /// The file a write goes to and its chunk size (or the size it will
    /// be created with).
    fn write_target(&self, path: &FsPath, create: Option<u32>) -> R<(Option<MEntry>, u32)> {
        let existing = self.resolve(path)?;
        let cs = match &existing {
            Some(e) if e.kind == EntryKind::Dir => {
                return Err(FsError::IsADirectory {
                    path: path.to_string(),
                })
            }
            Some(e) => e.chunk_size,
            None => match create {
                Some(s) if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&s) => s,
                Some(s) => return Err(FsError::InvalidChunkSize { size: s }),
                None => return Err(nf(path.as_str())),
            },
        };
        Ok((existing, cs))
    }

    fn write_inline(&mut self, w: &WriteInline) -> CommandResult {
        let length = w.content.len() as u64;
        let max = self.settings.inline_max_bytes;
        if length > u64::from(max) {
            return Err(FsError::InlineTooLarge { length, max });
        }
        if w.path.is_root() {
            return Err(FsError::IsADirectory { path: "/".into() });
        }
        let (existing, cs) = self.write_target(&w.path, w.create_with_chunk_size)?;
        let actual = existing.as_ref().map_or(Version(0), |e| e.version);
        Self::expect(w.path.as_str(), w.expect, actual)?;
        if let Some(e) = &existing {
            let slots = e.length.div_ceil(u64::from(e.chunk_size));
            if slots > MAX_CHUNKS_PER_OP as u64 {
                return Err(FsError::TooManyChunks { count: slots });
            }
        }
        let v = self.bump();
        if existing.is_none() {
            let e = self.new_entry(EntryKind::File, v, cs);
            self.entries.insert(w.path.to_string(), e);
            self.touch(&parent_of(w.path.as_str()), v);
        }
        let released: Vec<ChunkHash> = std::mem::take(&mut self.get_mut(w.path.as_str()).chunks)
            .into_values()
            .collect();
        for h in released {
            self.decref(h);
        }
        self.get_mut(w.path.as_str()).inline = (!w.content.is_empty()).then(|| w.content.clone());
        self.stamp(w.path.as_str(), length, v);
        Ok(Outcome::Written {
            version: v,
            file_length: length,
            bytes_written: length,
            freed: vec![],
        })
    }

    fn rename(
        &mut self,
        from: &FsPath,
        to: &FsPath,
        replace: bool,
        expect: Option<Version>,
    ) -> CommandResult {
        if from.is_root() || to.is_root() {
            return Err(FsError::RootNotAllowed {
                action: "renamed or replaced".into(),
            });
        }
        let src = self.lookup(from)?;
        Self::expect(from.as_str(), expect, src.version)?;
        if from == to {
            return Ok(Outcome::Renamed {
                version: src.version,
                freed: vec![],
            });
        }
        if from.is_ancestor_or_self_of(to) {
            return Err(FsError::RenameIntoOwnSubtree {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        let (to_parent, _) = to.split_last().expect("not root");
        self.lookup_dir(&to_parent)?;
        if let Some(t) = self.get(to.as_str()) {
            if !replace {
                return Err(FsError::RenameTargetExists { to: to.to_string() });
            }
            if t.kind != src.kind {
                return Err(FsError::RenameKindMismatch {
                    from: from.to_string(),
                    to: to.to_string(),
                });
            }
            if t.kind == EntryKind::Dir && !self.children(to.as_str()).is_empty() {
                return Err(FsError::NotEmpty {
                    path: to.to_string(),
                });
            }
        }
        let v = self.bump();
        self.remove_tree(to.as_str());
        let moved: Vec<String> = self
            .entries
            .keys()
            .filter(|k| is_under(k, from.as_str()))
            .cloned()
            .collect();
        for k in moved {
            let e = self.entries.remove(&k).expect("model entry");
            let nk = format!("{}{}", to.as_str(), &k[from.as_str().len()..]);
            self.entries.insert(nk, e);
        }
        self.get_mut(to.as_str()).version = v;
        self.touch(&parent_of(from.as_str()), v);
        self.touch(to_parent.as_str(), v);
        Ok(Outcome::Renamed {
            version: v,
            freed: vec![],
        })
    }

    fn set_replication_factor(&mut self, factor: u32, expect: Option<Version>) -> CommandResult {
        if !(1..=MAX_REPLICATION_FACTOR).contains(&factor) {
            return Err(FsError::InvalidReplicationFactor { factor });
        }
        self.change_settings(expect, |s| s.replication_factor = factor)
    }

    fn create_key(&mut self, name: &str, access: Access, hash: [u8; 32]) -> CommandResult {
        toastyfs_proto::admission::check_key_name(name)?;
        let now = self.time_ms;
        self.keys.retain(|_, (k, _)| {
            k.revoked_ms
                .is_none_or(|at| at.saturating_add(REVOCATION_NOTICE_MS) >= now)
        });
        let valid = self
            .keys
            .values()
            .filter(|(k, _)| k.revoked_ms.is_none())
            .count() as u64;
        if valid >= MAX_KEYS {
            return Err(FsError::TooManyKeys);
        }
        let id = KeyId(self.index);
        let info = KeyInfo {
            id,
            name: name.to_owned(),
            access,
            created_ms: now,
            revoked_ms: None,
        };
        self.keys.insert(id, (info, hash));
        Ok(Outcome::KeyCreated { id })
    }

    fn revoke_key(&mut self, id: KeyId) -> CommandResult {
        let now = self.time_ms;
        let Some((info, _)) = self.keys.get_mut(&id) else {
            return Err(FsError::NoSuchKey { id });
        };
        if info.revoked_ms.is_some() {
            return Err(FsError::KeyAlreadyRevoked { id });
        }
        info.revoked_ms = Some(now);
        Ok(Outcome::KeyRevoked { id })
    }

    fn set_min_copies(&mut self, copies: u32, expect: Option<Version>) -> CommandResult {
        if !(1..=MAX_REPLICATION_FACTOR).contains(&copies) {
            return Err(FsError::InvalidMinCopies { copies });
        }
        self.change_settings(expect, |s| s.min_copies = copies)
    }

    fn change_settings(
        &mut self,
        expect: Option<Version>,
        change: impl FnOnce(&mut ClusterSettings),
    ) -> CommandResult {
        if let Some(e) = expect {
            if e != self.settings.version {
                return Err(FsError::VersionMismatch {
                    path: "cluster settings".into(),
                    expected: e,
                    actual: self.settings.version,
                });
            }
        }
        let version = self.bump();
        change(&mut self.settings);
        self.settings.version = version;
        Ok(Outcome::SettingsChanged { version })
    }

    pub fn query(&self, q: &Query) -> QueryResult {
        match q {
            Query::Settings => Ok(QueryReply::Settings(self.settings)),
            Query::ListKeys => Ok(QueryReply::Keys(
                self.keys.values().map(|(k, _)| k.clone()).collect(),
            )),
            Query::Stat { path } => {
                let e = self.lookup(path)?;
                Ok(QueryReply::Stat(info(path.file_name().unwrap_or("/"), &e)))
            }
            Query::List { path, after, limit } => {
                if *limit == 0 || *limit > MAX_LIST_PAGE {
                    return Err(FsError::InvalidPageSize { limit: *limit });
                }
                if let Some(a) = after {
                    if toastyfs_proto::path::validate_component(a).is_err() {
                        return Err(FsError::InvalidCursor { after: a.clone() });
                    }
                }
                let d = self.lookup_dir(path)?;
                let all: Vec<(String, MEntry)> = self
                    .children(path.as_str())
                    .into_iter()
                    .filter(|(n, _)| after.as_ref().is_none_or(|a| n.as_bytes() > a.as_bytes()))
                    .collect();
                let more = all.len() > *limit as usize;
                let entries: Vec<EntryInfo> = all
                    .iter()
                    .take(*limit as usize)
                    .map(|(n, e)| info(n, e))
                    .collect();
                let next = if more {
                    entries.last().map(|e| e.name.clone())
                } else {
                    None
                };
                Ok(QueryReply::List(Listing {
                    dir_version: d.version,
                    entries,
                    next,
                }))
            }
            Query::ReadPlan {
                path,
                offset,
                length,
            } => {
                let e = self.lookup(path)?;
                if e.kind == EntryKind::Dir {
                    return Err(FsError::IsADirectory {
                        path: path.to_string(),
                    });
                }
                if let Some(content) = &e.inline {
                    return Ok(QueryReply::Inline(InlineContent {
                        version: e.version,
                        chunk_size: e.chunk_size,
                        content: content.clone(),
                    }));
                }
                let cs = u64::from(e.chunk_size);
                let mut end = offset.saturating_add(*length).min(e.length);
                if *offset < end {
                    end = end.min((offset / cs + MAX_CHUNKS_PER_OP as u64) * cs);
                }
                let len = end.saturating_sub(*offset);
                let chunks = if len == 0 {
                    vec![]
                } else {
                    (offset / cs..=(offset + len - 1) / cs)
                        .map(|i| e.chunks.get(&i).copied())
                        .collect()
                };
                Ok(QueryReply::ReadPlan(ReadPlan {
                    version: e.version,
                    chunk_size: e.chunk_size,
                    file_length: e.length,
                    offset: *offset,
                    length: len,
                    first_chunk: offset / cs,
                    chunks,
                }))
            }
        }
    }
}

fn info(name: &str, e: &MEntry) -> EntryInfo {
    EntryInfo {
        name: name.to_owned(),
        kind: e.kind,
        version: e.version,
        mtime_ms: e.mtime_ms,
        length: e.length,
        chunk_size: e.chunk_size,
    }
}
