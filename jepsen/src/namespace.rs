//! The namespace workload: concurrent clients put, create (no clobber),
//! delete, rename, read and list files in a few directories, and each
//! directory is checked as one object against a model of its files.
//!
//! A file's content is named by a label. Half the writes use one of a
//! small pool of labels whose contents span several chunks, so the same
//! chunks are deleted and put again and again while the collector drops
//! what nothing references (the drop grace is short in the profiles);
//! the other half use a label no other write uses. A read returns the
//! label whose content the bytes are, byte for byte, or `corrupt:...`,
//! which no model state explains.
//!
//! The model's state is the directory's files, name → label. Every
//! refusal that says something about the state (`exists`, `not-found`)
//! is an `ok` result the model checks; only errors the client calls
//! definite and uninformative are `fail`, and unknown endings `info`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use toastyfs_client::{is_upload_temp, Client, ClientError};
use toastyfs_proto::namespace::{EntryKind, FsError, MAX_LIST_PAGE};
use toastyfs_proto::FsPath;

use crate::dice::Dice;
use crate::history::{EventType, Operation};
use crate::linearizable::{canonical, parse_state, result, ModelError, State};
use crate::register::{run_processes, until_read, Recorder};

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct NamespaceWorkload {
    /// Concurrent clients (processes from [`NAMESPACE_PROCESS`]).
    pub clients: usize,
    /// The parent of the directories `<dir>/d<i>`.
    pub dir: String,
    /// Directories, each one object of the history.
    pub dirs: usize,
    /// File names per directory, `n<i>`.
    pub names: usize,
    /// Shared contents, labels `c<i>`.
    pub pool: usize,
    /// Bytes of a shared content.
    pub pool_bytes: usize,
    /// Chunk size of every file written.
    pub chunk_size: u32,
    pub duration: Duration,
}

/// The first process number of the namespace clients.
pub const NAMESPACE_PROCESS: u64 = 200;

impl NamespaceWorkload {
    /// Three clients on two directories of three names, contents of six
    /// 16 KiB chunks from a pool of three.
    pub fn short_profile() -> NamespaceWorkload {
        NamespaceWorkload {
            clients: 3,
            dir: "/ns".into(),
            dirs: 2,
            names: 3,
            pool: 3,
            pool_bytes: 96 << 10,
            chunk_size: 16 << 10,
            duration: Duration::from_secs(20),
        }
    }

    /// Directory `d`'s path (the key of its operations).
    pub fn directory(&self, d: u64) -> String {
        format!("{}/d{d}", self.dir)
    }

    /// The bytes of a file labelled `label`.
    pub fn content(&self, label: &str) -> Vec<u8> {
        content(label, self.pool_bytes)
    }

    /// Runs every client until the duration is over.
    pub async fn run(&self, client: &Client, recorder: &Recorder) {
        run_processes(
            NAMESPACE_PROCESS,
            self.clients,
            self.duration,
            |process, deadline| self.client_loop(process, client, recorder, deadline),
        )
        .await;
    }

    async fn client_loop(&self, process: u64, client: &Client, rec: &Recorder, deadline: Instant) {
        let mut dice = Dice::new(0x6a09_e667_f3bc_c909 ^ (process + 1));
        let mut n = 0u64;
        while Instant::now() < deadline {
            let dir = self.directory(dice.roll(self.dirs as u64));
            let name = format!("n{}", dice.roll(self.names as u64));
            let label = if dice.roll(2) == 0 {
                format!("c{}", dice.roll(self.pool as u64))
            } else {
                n += 1;
                format!("p{process}-{n}")
            };
            let op = Op {
                process,
                dir: &dir,
                recorder: rec,
            };
            match dice.roll(100) {
                0..25 => drop(op.get(client, &name, self).await),
                25..40 => drop(op.list(client).await),
                40..60 => drop(op.put(client, &name, &label, false, self).await),
                60..70 => drop(op.put(client, &name, &label, true, self).await),
                70..85 => drop(op.delete(client, &name).await),
                _ => {
                    let to = format!("n{}", dice.roll(self.names as u64));
                    if to != name {
                        op.rename(client, &name, &to).await;
                    }
                }
            }
        }
    }

    /// After the heal: lists every directory and reads every file in it
    /// (process `process`), retrying while `within` lasts. Returns the
    /// paths that could not be read.
    pub async fn final_reads(
        &self,
        client: &Client,
        recorder: &Recorder,
        process: u64,
        within: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut unreadable = Vec::new();
        for d in 0..self.dirs as u64 {
            let dir = self.directory(d);
            let op = Op {
                process,
                dir: &dir,
                recorder,
            };
            let names = loop {
                if let Some(names) = op.list(client).await {
                    break Some(names);
                }
                if Instant::now() > deadline {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            let Some(names) = names else {
                unreadable.push(dir.clone());
                continue;
            };
            for name in names {
                let read = || async { op.get(client, &name, self).await.is_some() };
                if !until_read(deadline, read).await {
                    unreadable.push(format!("{dir}/{name}"));
                }
            }
        }
        unreadable
    }
}

/// The bytes labelled `label`: a pool label (`c<i>`) stands for
/// `pool_bytes` of numbered lines, any other label for itself.
pub fn content(label: &str, pool_bytes: usize) -> Vec<u8> {
    if !label.starts_with('c') {
        return label.as_bytes().to_vec();
    }
    let mut bytes = Vec::with_capacity(pool_bytes + 32);
    let mut line = 0u64;
    while bytes.len() < pool_bytes {
        bytes.extend_from_slice(format!("{label} {line:08}\n").as_bytes());
        line += 1;
    }
    bytes.truncate(pool_bytes);
    bytes
}

/// The label whose content `bytes` are, or what they hold instead.
pub fn label_of(bytes: &[u8], pool_bytes: usize) -> String {
    let head: Vec<u8> = bytes.iter().copied().take_while(|b| *b != b' ').collect();
    match String::from_utf8(head) {
        Ok(label) if content(&label, pool_bytes) == bytes => label,
        _ => format!(
            "corrupt:{} bytes:{}",
            bytes.len(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(24)])
        ),
    }
}

/// One recorded operation on a directory.
struct Op<'a> {
    process: u64,
    dir: &'a str,
    recorder: &'a Recorder,
}

impl Op<'_> {
    fn path(&self, name: &str) -> FsPath {
        FsPath::new(&format!("{}/{name}", self.dir)).expect("a valid workload path")
    }

    /// Records `f` with `input`, runs it, and records how it ended:
    /// `Ok(value)` is an `ok` with that result.
    async fn record(
        &self,
        f: &str,
        input: Value,
        run: impl std::future::Future<Output = Result<Value, ClientError>>,
    ) -> Option<Value> {
        let rec = self.recorder;
        rec.record(self.process, EventType::Invoke, f, self.dir, input.clone());
        match run.await {
            Ok(value) => {
                rec.record(self.process, EventType::Ok, f, self.dir, value.clone());
                Some(value)
            }
            Err(e) => {
                let kind = rec.ending(self.process, &e);
                rec.record(self.process, kind, f, self.dir, input);
                None
            }
        }
    }

    async fn get(&self, client: &Client, name: &str, w: &NamespaceWorkload) -> Option<Value> {
        let path = self.path(name);
        self.record("ns-get", json!(name), async {
            let mut out = Vec::new();
            match client.read_to(&path, 0, None, &mut out, None).await {
                Ok(_) => Ok(label_of(&out, w.pool_bytes).into()),
                Err(ClientError::Refused(FsError::NotFound { .. })) => Ok(Value::Null),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The directory's file names (upload temporaries left out).
    async fn list(&self, client: &Client) -> Option<Vec<String>> {
        let dir = FsPath::new(self.dir).expect("a valid workload directory");
        let listed = self
            .record("ns-list", Value::Null, async {
                let mut names = Vec::new();
                let mut after = None;
                loop {
                    let page = client.list(&dir, after, MAX_LIST_PAGE).await?;
                    let files = page.entries.iter().filter(|e| e.kind == EntryKind::File);
                    names.extend(
                        files
                            .filter(|e| !is_upload_temp(&e.name))
                            .map(|e| e.name.clone()),
                    );
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                names.sort();
                Ok(json!(names))
            })
            .await?;
        serde_json::from_value(listed).ok()
    }

    async fn put(
        &self,
        client: &Client,
        name: &str,
        label: &str,
        no_clobber: bool,
        w: &NamespaceWorkload,
    ) -> Option<Value> {
        let path = self.path(name);
        let bytes = w.content(label);
        let f = if no_clobber { "ns-create" } else { "ns-put" };
        let input = json!({ "name": name, "content": label });
        self.record(f, input, async {
            let put = client.put(&path, &bytes[..], no_clobber, Some(w.chunk_size), None);
            match put.await {
                Ok(_) => Ok(json!("ok")),
                Err(e) if no_clobber && refused_as_existing(&e) => Ok(json!("exists")),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn delete(&self, client: &Client, name: &str) -> Option<Value> {
        let path = self.path(name);
        self.record("ns-delete", json!(name), async {
            match client.delete(&path, false, None).await {
                Ok(_) => Ok(json!("ok")),
                Err(ClientError::Refused(FsError::NotFound { .. })) => Ok(json!("not-found")),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn rename(&self, client: &Client, from: &str, to: &str) -> Option<Value> {
        let (from_path, to_path) = (self.path(from), self.path(to));
        self.record("ns-rename", json!([from, to]), async {
            match client.rename(&from_path, &to_path, false, None).await {
                Ok(_) => Ok(json!("ok")),
                Err(ClientError::Refused(FsError::NotFound { .. })) => Ok(json!("not-found")),
                Err(e) if refused_as_existing(&e) => Ok(json!("exists")),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// A refusal because the target exists.
fn refused_as_existing(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Refused(FsError::AlreadyExists { .. } | FsError::RenameTargetExists { .. })
    )
}

/// The directory model's step: the state after `op`, if the files as
/// they are allow it (with the result it returned, when known).
pub(crate) fn step(state: &State, op: &Operation) -> Result<Option<State>, ModelError> {
    let mut files: BTreeMap<String, String> = parse_state(state, op)?;
    let bad = || ModelError::BadInput {
        index: op.index,
        f: op.f.clone(),
        input: op.input.to_string(),
    };
    let said = |expected: &str| result(op).is_none_or(|r| r == expected);
    let name = |v: &Value| v.as_str().map(str::to_owned).ok_or_else(bad);
    let allowed = match op.f.as_str() {
        "ns-put" | "ns-create" => {
            let target = name(&op.input["name"])?;
            let label = name(&op.input["content"])?;
            if op.f == "ns-create" && files.contains_key(&target) {
                said("exists")
            } else {
                files.insert(target, label);
                true
            }
        }
        "ns-delete" => {
            if files.remove(&name(&op.input)?).is_some() {
                said("ok")
            } else {
                said("not-found")
            }
        }
        "ns-rename" => {
            let (from, to) = (name(&op.input[0])?, name(&op.input[1])?);
            if !files.contains_key(&from) {
                said("not-found")
            } else if files.contains_key(&to) {
                said("exists")
            } else {
                let label = files.remove(&from).unwrap_or_default();
                files.insert(to, label);
                said("ok")
            }
        }
        "ns-get" => {
            let held = files
                .get(&name(&op.input)?)
                .map_or(Value::Null, |l| json!(l));
            result(op).is_none_or(|r| *r == held)
        }
        "ns-list" => {
            let names: Vec<&String> = files.keys().collect();
            result(op).is_none_or(|r| *r == json!(names))
        }
        other => {
            return Err(ModelError::UnknownFunction {
                index: op.index,
                f: other.to_owned(),
            })
        }
    };
    Ok(allowed.then(|| canonical(&json!(files))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::linearizable::tests::{op, verdict};
    use crate::linearizable::Verdict;

    fn put(index: usize, name: &str, label: &str, from: u64, to: u64) -> Operation {
        let input = json!({"name": name, "content": label});
        op(index, "ns-put", input, from, Some((to, json!("ok"))))
    }

    #[test]
    fn a_sequential_history_of_every_operation_is_linearizable() {
        let ops = [
            put(0, "a", "c1", 0, 1),
            op(
                1,
                "ns-create",
                json!({"name": "a", "content": "x"}),
                2,
                Some((3, json!("exists"))),
            ),
            op(2, "ns-rename", json!(["a", "b"]), 4, Some((5, json!("ok")))),
            op(3, "ns-get", json!("b"), 6, Some((7, json!("c1")))),
            op(4, "ns-list", Value::Null, 8, Some((9, json!(["b"])))),
            op(
                5,
                "ns-delete",
                json!("a"),
                10,
                Some((11, json!("not-found"))),
            ),
            op(6, "ns-delete", json!("b"), 12, Some((13, json!("ok")))),
            op(7, "ns-list", Value::Null, 14, Some((15, json!([])))),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_lost_rename_and_a_resurrected_file_are_caught() {
        let lost = [
            put(0, "a", "c1", 0, 1),
            op(1, "ns-rename", json!(["a", "b"]), 2, Some((3, json!("ok")))),
            op(2, "ns-list", Value::Null, 4, Some((5, json!(["a"])))),
        ];
        assert!(matches!(verdict(&lost), Verdict::NotLinearizable { .. }));
        let resurrected = [
            put(0, "a", "c1", 0, 1),
            op(1, "ns-delete", json!("a"), 2, Some((3, json!("ok")))),
            op(2, "ns-get", json!("a"), 4, Some((5, json!("c1")))),
        ];
        assert!(matches!(
            verdict(&resurrected),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn an_unknown_put_may_land_late_but_a_corrupt_read_never_fits() {
        let late = [
            op(0, "ns-put", json!({"name": "a", "content": "c2"}), 0, None),
            op(1, "ns-get", json!("a"), 5, Some((6, Value::Null))),
            op(2, "ns-get", json!("a"), 7, Some((8, json!("c2")))),
        ];
        assert_eq!(verdict(&late), Verdict::Linearizable);
        let corrupt = [
            put(0, "a", "c1", 0, 1),
            op(
                1,
                "ns-get",
                json!("a"),
                2,
                Some((3, json!("corrupt:10 bytes:c1"))),
            ),
        ];
        assert!(matches!(verdict(&corrupt), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn contents_round_trip_through_their_labels() {
        for label in ["c0", "c2", "p201-7"] {
            assert_eq!(label_of(&content(label, 5000), 5000), label);
        }
        let mut torn = content("c1", 5000);
        torn[4000] ^= 1;
        assert!(label_of(&torn, 5000).starts_with("corrupt:5000"));
        assert!(label_of(&content("c1", 4000), 5000).starts_with("corrupt:4000"));
    }
}
