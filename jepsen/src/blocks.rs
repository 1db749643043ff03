//! The blocks workload: concurrent partial writes at disjoint offsets of
//! one large file. Each process owns a run of blocks (one chunk each) and
//! overwrites them in place with blocks that name their writer and their
//! number; every process also reads blocks anywhere in the file. Each
//! block is a register of the history (key `<file>#<block>`, value the
//! writer's tag, `initial` before any write), so the linearizability
//! checker sees a lost, torn or resurrected block as it sees a stale read,
//! and the final reads after the heal prove every acknowledged byte
//! survived.

use std::time::{Duration, Instant};

use serde_json::Value;
use toastyfs_client::{Client, ClientError, WriteOptions};
use toastyfs_proto::FsPath;

use crate::dice::Dice;
use crate::history::EventType;
use crate::register::{until_read, Recorder};

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct BlocksWorkload {
    /// The file, created with one chunk per block.
    pub path: String,
    pub writers: usize,
    pub blocks_per_writer: u64,
    /// Bytes per block, the file's chunk size.
    pub block_size: u32,
    pub duration: Duration,
    /// Out of 100 operations, how many are reads.
    pub read_percent: u64,
}

/// The tag of the blocks written before the run.
const INITIAL: &str = "initial";

/// A block of `size` bytes carrying `tag`: the tag, then `.` padding.
fn block(tag: &str, size: u32) -> Vec<u8> {
    let mut bytes = tag.as_bytes().to_vec();
    bytes.resize(size as usize, b'.');
    bytes
}

/// The tag a block carries, or what it holds instead (`torn:...`).
fn tag_of(bytes: &[u8], size: u32) -> Value {
    let tag: Vec<u8> = bytes.iter().copied().take_while(|b| *b != b'.').collect();
    let padded = bytes.len() == size as usize && bytes[tag.len()..].iter().all(|b| *b == b'.');
    match String::from_utf8(tag) {
        Ok(tag) if padded => tag.into(),
        _ => format!(
            "torn:{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        )
        .into(),
    }
}

impl BlocksWorkload {
    /// The short profile: three writers of four 4 KiB blocks each.
    pub fn short_profile() -> BlocksWorkload {
        BlocksWorkload {
            path: "/blocks/big".into(),
            writers: 3,
            blocks_per_writer: 4,
            block_size: 4096,
            duration: Duration::from_secs(20),
            read_percent: 40,
        }
    }

    fn blocks(&self) -> u64 {
        self.writers as u64 * self.blocks_per_writer
    }

    fn key(&self, block: u64) -> String {
        format!("{}#{block}", self.path)
    }

    /// Writes every block with the initial tag (retrying for `within`),
    /// recorded as one write per block by processes `setup_process + b`.
    pub async fn prepare(
        &self,
        client: &Client,
        recorder: &Recorder,
        setup_process: u64,
        within: Duration,
    ) -> Result<(), ClientError> {
        for b in 0..self.blocks() {
            let key = self.key(b);
            recorder.record(
                setup_process + b,
                EventType::Invoke,
                "write",
                &key,
                INITIAL.into(),
            );
        }
        self.write_initial(client, within).await?;
        for b in 0..self.blocks() {
            let key = self.key(b);
            recorder.record(
                setup_process + b,
                EventType::Ok,
                "write",
                &key,
                INITIAL.into(),
            );
        }
        Ok(())
    }

    async fn write_initial(&self, client: &Client, within: Duration) -> Result<(), ClientError> {
        let path = FsPath::new(&self.path).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let content: Vec<u8> = (0..self.blocks())
            .flat_map(|_| block(INITIAL, self.block_size))
            .collect();
        let deadline = Instant::now() + within;
        loop {
            let options = WriteOptions {
                expect: None,
                create_with_chunk_size: Some(self.block_size),
                progress: None,
            };
            match client.write_at(&path, 0, &content[..], options).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }

    /// Runs every writer until the duration is over (processes numbered
    /// from `first_process`).
    pub async fn run(&self, client: &Client, recorder: &Recorder, first_process: u64) {
        let deadline = Instant::now() + self.duration;
        let loops = (0..self.writers as u64)
            .map(|w| self.writer_loop(first_process + w, w, client, recorder, deadline));
        futures::future::join_all(loops).await;
    }

    async fn writer_loop(
        &self,
        process: u64,
        writer: u64,
        client: &Client,
        recorder: &Recorder,
        deadline: Instant,
    ) {
        let path = FsPath::new(&self.path).expect("a valid workload path");
        let mut dice = Dice::new((process + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut n = 0u64;
        while Instant::now() < deadline {
            if dice.roll(100) < self.read_percent {
                let b = dice.roll(self.blocks());
                self.read_block(process, client, recorder, &path, b).await;
                continue;
            }
            n += 1;
            let b = writer * self.blocks_per_writer + dice.roll(self.blocks_per_writer);
            let tag = format!("w{writer}-{n}");
            let key = self.key(b);
            recorder.record(
                process,
                EventType::Invoke,
                "write",
                &key,
                tag.clone().into(),
            );
            let options = WriteOptions {
                expect: None,
                create_with_chunk_size: None,
                progress: None,
            };
            let bytes = block(&tag, self.block_size);
            let offset = b * u64::from(self.block_size);
            let kind = match client.write_at(&path, offset, &bytes[..], options).await {
                Ok(_) => EventType::Ok,
                Err(e) => recorder.ending(process, &e),
            };
            recorder.record(process, kind, "write", &key, tag.into());
        }
    }

    /// Reads block `b` and records it; whether the read succeeded.
    async fn read_block(
        &self,
        process: u64,
        client: &Client,
        recorder: &Recorder,
        path: &FsPath,
        b: u64,
    ) -> bool {
        let key = self.key(b);
        recorder.record(process, EventType::Invoke, "read", &key, Value::Null);
        let mut out = Vec::new();
        let offset = b * u64::from(self.block_size);
        let length = Some(u64::from(self.block_size));
        let (kind, value) = match client.read_to(path, offset, length, &mut out, None).await {
            Ok(_) => (EventType::Ok, tag_of(&out, self.block_size)),
            Err(e) => (recorder.ending(process, &e), Value::Null),
        };
        recorder.record(process, kind, "read", &key, value);
        kind == EventType::Ok
    }

    /// After the heal: reads every block once more (process
    /// `final_process`), retrying while `within` lasts; returns the blocks
    /// that could not be read.
    pub async fn final_reads(
        &self,
        client: &Client,
        recorder: &Recorder,
        final_process: u64,
        within: Duration,
    ) -> Vec<String> {
        let path = FsPath::new(&self.path).expect("a valid workload path");
        let mut unreadable = Vec::new();
        let deadline = Instant::now() + within;
        for b in 0..self.blocks() {
            let read = || self.read_block(final_process, client, recorder, &path, b);
            if !until_read(deadline, read).await {
                unreadable.push(self.key(b));
            }
        }
        unreadable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_carries_its_tag_and_a_torn_one_says_so() {
        let b = block("w1-7", 16);
        assert_eq!(b, b"w1-7............".to_vec());
        assert_eq!(tag_of(&b, 16), Value::from("w1-7"));
        let mut torn = block("w1-7", 16);
        torn[10] = b'x';
        assert!(tag_of(&torn, 16).as_str().unwrap().starts_with("torn:"));
        assert!(tag_of(&b[..8], 16).as_str().unwrap().starts_with("torn:"));
    }
}
