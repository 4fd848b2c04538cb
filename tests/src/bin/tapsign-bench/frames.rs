//! The one client every target is measured with, and the targets that are not tapsign: a bare
//! frame echo server and OpenSSH's ssh-agent.
//!
//! tapsign's protocol and the ssh-agent protocol frame the same way (a 4-byte big-endian
//! length, then the body), so one client sends a prepared frame and reads one frame back,
//! whatever is on the other end. Each target differs only in the bytes it is sent and in how
//! its answer is checked.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Something to measure: where it listens, what a connection says first, the request.
pub struct Target {
    pub name: String,
    pub sock: PathBuf,
    /// A frame sent once per connection before measuring (tapsign's `hello`).
    pub hello: Option<Vec<u8>>,
    /// The request frame, length header included.
    pub request: Vec<u8>,
    /// Whether an answer body is the expected kind (a signature, the echo).
    pub check: fn(&[u8], &[u8]) -> bool,
}

/// One connection of the client.
pub struct Conn {
    stream: UnixStream,
    body: Vec<u8>,
}

impl Conn {
    pub fn open(t: &Target) -> Conn {
        let stream = UnixStream::connect(&t.sock)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", t.sock.display()));
        let mut c = Conn {
            stream,
            body: Vec::with_capacity(4096),
        };
        if let Some(hello) = &t.hello {
            c.round_trip(hello);
        }
        c
    }

    /// Send `frame`, read one frame back; its body is left in `self.body`.
    pub fn round_trip(&mut self, frame: &[u8]) -> &[u8] {
        self.stream.write_all(frame).expect("send");
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).expect("read header");
        let len = u32::from_be_bytes(header) as usize;
        self.body.resize(len, 0);
        self.stream.read_exact(&mut self.body).expect("read body");
        &self.body
    }

    /// One request, checked.
    pub fn request(&mut self, t: &Target) {
        let body = self.round_trip(&t.request);
        assert!(
            (t.check)(&t.request[4..], body),
            "{}: unexpected answer {:?}",
            t.name,
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Round-trip times of `n` requests on one connection, after a warm-up.
pub fn latencies(t: &Target, n: usize) -> Vec<Duration> {
    let mut c = Conn::open(t);
    for _ in 0..200 {
        c.request(t);
    }
    (0..n)
        .map(|_| {
            let start = Instant::now();
            c.request(t);
            start.elapsed()
        })
        .collect()
}

/// Requests per second with `clients` connections, each on its own thread, for `time`.
pub fn throughput(t: &Target, clients: usize, time: Duration) -> f64 {
    let barrier = std::sync::Barrier::new(clients + 1);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Conn::open(t);
                    barrier.wait();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < time {
                        c.request(t);
                        n += 1;
                    }
                    n as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        barrier.wait();
        threads.into_iter().map(|h| h.join().expect("client")).sum()
    })
}

// ---- the bare frame echo ----

/// The transport limit: a server shaped like the agent's (tokio, two workers, a task per
/// connection, the frame read the way the agent reads it: first byte, rest of the header, body,
/// each under a timeout) that sends each frame straight back in one write.
pub fn echo_server(sock: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::UnixListener::bind(sock).expect("bind the echo socket");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(echo_connection(stream));
        }
    });
}

async fn echo_connection(mut stream: tokio::net::UnixStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::timeout;
    let patience = Duration::from_secs(600);
    loop {
        let mut frame = vec![0u8; 4];
        if !matches!(
            timeout(patience, stream.read_exact(&mut frame[..1])).await,
            Ok(Ok(_))
        ) {
            return;
        }
        if !matches!(
            timeout(patience, stream.read_exact(&mut frame[1..])).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Ok(len) = tapsign_proto::frame::check_len([frame[0], frame[1], frame[2], frame[3]])
        else {
            return;
        };
        frame.resize(4 + len, 0);
        if !matches!(
            timeout(patience, stream.read_exact(&mut frame[4..])).await,
            Ok(Ok(_))
        ) {
            return;
        }
        if stream.write_all(&frame).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// A child process stopped when dropped (the benchmark failing or not).
pub struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `tapsign-bench echo-server SOCK` as a process of its own, like the agent.
pub fn spawn_echo(dir: &Path) -> (Stopped, PathBuf) {
    let sock = dir.join("echo.sock");
    let child = Command::new(std::env::current_exe().expect("own path"))
        .arg("echo-server")
        .arg(&sock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the echo server");
    let child = Stopped(child);
    wait_for(&sock);
    (child, sock)
}

pub fn wait_for(sock: &Path) {
    let start = Instant::now();
    while UnixStream::connect(sock).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never answered",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn echo_target(sock: PathBuf, request: &[u8]) -> Target {
    Target {
        name: "frame echo".into(),
        sock,
        hello: None,
        request: request.to_vec(),
        check: |sent, got| sent == got,
    }
}

// ---- OpenSSH ssh-agent (draft-miller-ssh-agent) ----

const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENT_SIGN_RESPONSE: u8 = 14;

/// `string`: a uint32 length, then the bytes.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn take_string(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = buf.get(4..4 + len)?;
    Some((s, &buf[4 + len..]))
}

/// A running `ssh-agent` holding one new Ed25519 key.
pub struct SshAgent {
    _child: Stopped,
    pub target: Target,
}

/// Start `ssh-agent -D` on a socket in `dir`, `ssh-add` an Ed25519 key made for the run, and
/// build a sign request for it (`data` to sign, as a bot's request would be).
pub fn ssh_agent(dir: &Path, data: &[u8]) -> Result<SshAgent, String> {
    let sock = dir.join("ssh-agent.sock");
    let key = dir.join("id_ed25519");
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    };
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
        .arg(&key))?;
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("ssh-agent: {e}"))?;
    let mut agent = SshAgent {
        _child: Stopped(child),
        target: Target {
            name: "OpenSSH ssh-agent, Ed25519".into(),
            sock: sock.clone(),
            hello: None,
            request: Vec::new(),
            check: |_, got| got.first() == Some(&SSH_AGENT_SIGN_RESPONSE),
        },
    };
    wait_for(&sock);
    run(Command::new("ssh-add")
        .arg("-q")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock))?;
    let mut c = Conn::open(&agent.target);
    let answer = c
        .round_trip(&frame(&[SSH_AGENTC_REQUEST_IDENTITIES]))
        .to_vec();
    let blob = match answer.split_first() {
        Some((&SSH_AGENT_IDENTITIES_ANSWER, rest)) if rest.len() > 4 => {
            take_string(&rest[4..]).map(|(blob, _)| blob.to_vec())
        }
        _ => None,
    }
    .ok_or("ssh-agent listed no key")?;
    let mut body = vec![SSH_AGENTC_SIGN_REQUEST];
    put_string(&mut body, &blob);
    put_string(&mut body, data);
    body.extend_from_slice(&0u32.to_be_bytes()); // flags
    agent.target.request = frame(&body);
    Ok(agent)
}
