//! Large stored bodies go to plain-TCP clients by `sendfile(2)`, from the page cache, instead of
//! being copied from the server's memory into the socket.
//!
//! On the machine the standby was measured on, that copy was a third of the server's CPU when
//! it served a 200 KB image (`bench/serve`), where nginx (`sendfile on`) pays none.
//!
//! How, without changing hyper: a body the standby loads from its file and keeps in memory is
//! made with [`file_backed`], which registers the memory's address range with the open file
//! for exactly as long as the memory lives (the registration is dropped with the last `Bytes`
//! that shares it, so an address can never name a file it did not come from). hyper writes a
//! response body straight from that memory, so the connection's writer ([`ZeroCopy`], under
//! hyper) recognises a write of (part of) a registered range and sends those bytes from the
//! file at the same offset. The file is the body's content-addressed file, never changed once
//! written, so both hold the same bytes. Everything else, and every TLS connection (whose
//! writer sees ciphertext), is written as usual. Bodies under [`MIN_LEN`] are not registered:
//! for them a copy costs less than the lookups.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bodies at least this long are sent from their file.
pub const MIN_LEN: usize = 64 * 1024;

/// At most this many bodies keep their file open at once (each is a file descriptor, and the
/// standby's body cache may hold thousands of large bodies); past it, bodies are plain memory,
/// copied into the socket as before.
pub const MAX_FILES: usize = 256;

/// Registered memory: start address → (length, file).
type Ranges = BTreeMap<usize, (usize, Arc<File>)>;

fn ranges() -> &'static Mutex<Ranges> {
    static RANGES: std::sync::OnceLock<Mutex<Ranges>> = std::sync::OnceLock::new();
    RANGES.get_or_init(Default::default)
}

/// Bytes sent by `sendfile` since the process started (for the tests and the bench).
static SENT: AtomicU64 = AtomicU64::new(0);

pub fn bytes_sent_from_files() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// The memory of a file-backed body and its registration, which ends when it is dropped.
struct Backed {
    data: Box<[u8]>,
}

impl AsRef<[u8]> for Backed {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Backed {
    fn drop(&mut self) {
        if let Ok(mut r) = ranges().lock() {
            r.remove(&(self.data.as_ptr() as usize));
        }
    }
}

/// `data`, which must be the whole content of `file`, as `Bytes` that [`ZeroCopy`] sends from
/// the file. Short bodies are returned as plain `Bytes`.
pub fn file_backed(data: Vec<u8>, file: File) -> Bytes {
    if data.len() < MIN_LEN {
        return Bytes::from(data);
    }
    let data = data.into_boxed_slice();
    let Ok(mut r) = ranges().lock() else {
        return Bytes::from(data);
    };
    if r.len() >= MAX_FILES {
        return Bytes::from(data);
    }
    r.insert(data.as_ptr() as usize, (data.len(), Arc::new(file)));
    drop(r);
    Bytes::from_owner(Backed { data })
}

/// The file and offset that hold `buf`, if `buf` lies in a registered range.
fn lookup(buf: &[u8]) -> Option<(Arc<File>, u64)> {
    if buf.len() < MIN_LEN / 4 {
        return None;
    }
    let at = buf.as_ptr() as usize;
    let r = ranges().lock().ok()?;
    let (&start, (len, file)) = r.range(..=at).next_back()?;
    (at + buf.len() <= start + len).then(|| (file.clone(), (at - start) as u64))
}

/// A plain TCP connection's reader and writer, sending registered bodies by `sendfile`.
pub struct ZeroCopy(pub TcpStream);

impl ZeroCopy {
    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        file: &File,
        mut offset: u64,
        len: usize,
    ) -> Poll<std::io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            let sent = self.0.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.0, file, Some(&mut offset), len).map_err(Into::into)
            });
            match sent {
                Ok(n) => {
                    SENT.fetch_add(n as u64, Ordering::Relaxed);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl ZeroCopy {
    /// Writes (part of) `buf` with `MSG_MORE`: a response's head, held back by the kernel to
    /// leave in the same segment as the first bytes of the body that follows (as nginx's
    /// `tcp_nopush` does), rather than as a small segment of its own.
    fn poll_send_more(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            let sent = self.0.try_io(Interest::WRITABLE, || {
                rustix::net::send(&self.0, buf, rustix::net::SendFlags::MORE).map_err(Into::into)
            });
            match sent {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for ZeroCopy {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopy {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match lookup(buf) {
            Some((file, offset)) => self.poll_sendfile(cx, &file, offset, buf.len()),
            None => Pin::new(&mut self.0).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // What comes before the first registered buffer (a response's head) is written with
        // MSG_MORE, a buffer at a time; the registered buffer goes by sendfile when it is first.
        let first = bufs
            .iter()
            .enumerate()
            .find_map(|(i, b)| Some((i, lookup(b)?)));
        match first {
            Some((0, (file, offset))) => self.poll_sendfile(cx, &file, offset, bufs[0].len()),
            Some(_) => self.poll_send_more(cx, &bufs[0]),
            None => Pin::new(&mut self.0).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The registry is the process's: tests that fill it or count on a place in it take turns
    /// (nextest runs each test alone anyway; `cargo test` does not).
    static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn file_with(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        f
    }

    #[test]
    fn a_registered_range_is_found_until_its_memory_is_dropped() {
        let data = vec![7u8; MIN_LEN * 2];
        let b = file_backed(data.clone(), file_with(&data));
        let part = b.slice(1000..MIN_LEN + 1000);
        let (_, offset) = lookup(&part).expect("a slice of a registered body");
        assert_eq!(offset, 1000);
        assert!(lookup(&data).is_none(), "other memory with the same bytes");
        let at = b.as_ptr() as usize;
        drop(b);
        assert!(lookup(&part).is_some(), "a slice keeps the memory alive");
        drop(part);
        assert!(!ranges().lock().unwrap().contains_key(&at));
        let short = file_backed(vec![1; 10], file_with(&[1; 10]));
        assert!(lookup(&short).is_none());
    }

    #[test]
    fn at_most_max_files_stay_open() {
        let _turn = TURNS.blocking_lock();
        let data = vec![3u8; MIN_LEN];
        let held: Vec<Bytes> = (0..MAX_FILES + 10)
            .map(|_| file_backed(data.clone(), file_with(&data)))
            .collect();
        let open = held.iter().filter(|b| lookup(b).is_some()).count();
        assert!(open <= MAX_FILES, "{open} files open");
        assert!(held.iter().all(|b| **b == data[..]));
    }

    /// Through the real server loop: a body larger than the socket's buffers (so sendfile
    /// meets a full socket and waits), whole and as a slice from an offset, to a client that
    /// reads late. What arrives must be the body, byte for byte, and it must have come from the
    /// file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_bodies_arrive_whole_from_their_file() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _turn = TURNS.lock().await;
        let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let body = file_backed(data.clone(), file_with(&data));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let opts = crate::http::server::Options {
            name: "test",
            max_connections: 8,
            header_timeout: std::time::Duration::from_secs(5),
            http2: false,
            max_lifetime: None,
            grace: std::time::Duration::from_secs(1),
            cores: None,
        };
        let served = body.clone();
        let server = tokio::spawn(crate::http::server::serve(
            listener,
            None,
            opts,
            stop.clone(),
            move |req, _| {
                let b = if req.uri().path() == "/part" {
                    served.slice(12_345..)
                } else {
                    served.clone()
                };
                async move { hyper::Response::new(http_body_util::Full::new(b)) }
            },
        ));
        let before = bytes_sent_from_files();
        for (path, want) in [("/", &data[..]), ("/part", &data[12_345..])] {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.unwrap();
            let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", &got[..split]);
            assert!(got[split..] == *want, "{path}: the body differs");
        }
        let sent = bytes_sent_from_files() - before;
        assert!(
            sent >= (2 * data.len() - 12_345) as u64,
            "only {sent} bytes came from the file"
        );
        stop.cancel();
        server.await.unwrap();
    }
}
