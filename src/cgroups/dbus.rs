//! A minimal, blocking, single-threaded D-Bus client: just enough of the
//! wire protocol to call systemd's manager (StartTransientUnit,
//! SetUnitProperties, StopUnit) and wait for the job it queues.
//!
//! Hand-written rather than `zbus`: zbus's blocking API runs an executor
//! thread, and the runtime must stay single-threaded until the init is
//! cloned (and should not carry threads into the hooks it forks after). This
//! client is one unix socket and a few hundred bytes per call, with no
//! thread and no allocation beyond the message buffers.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The system bus socket (DBUS_SYSTEM_BUS_ADDRESS is not consulted, as runc).
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// A value of a unit property, with its D-Bus type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `s`
    Str(String),
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `u`
    U32(u32),
    /// `i`
    I32(i32),
    /// `au`
    U32s(Vec<u32>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `as`
    Strs(Vec<String>),
    /// `a(ss)` (DeviceAllow)
    Pairs(Vec<(String, String)>),
}

impl Value {
    fn sig(&self) -> &'static str {
        match self {
            Value::Str(_) => "s",
            Value::Bool(_) => "b",
            Value::U64(_) => "t",
            Value::U32(_) => "u",
            Value::I32(_) => "i",
            Value::U32s(_) => "au",
            Value::Bytes(_) => "ay",
            Value::Strs(_) => "as",
            Value::Pairs(_) => "a(ss)",
        }
    }
}

/// A unit property: name and value.
pub type Property = (String, Value);

/// Message body writer (little endian, offsets relative to the message
/// start; bodies begin 8-aligned, so alignment is the same).
#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn align(&mut self, n: usize) {
        while self.0.len() % n != 0 {
            self.0.push(0);
        }
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.align(4);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.align(8);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    fn sig(&mut self, s: &str) {
        self.u8(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    /// An array whose elements align to `elem_align`, written by `f`.
    fn array(&mut self, elem_align: usize, f: impl FnOnce(&mut Buf)) {
        self.align(4);
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        self.align(elem_align);
        let start = self.0.len();
        f(self);
        let len = (self.0.len() - start) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Str(s) => self.str(s),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U64(n) => self.u64(*n),
            Value::U32(n) => self.u32(*n),
            Value::I32(n) => self.u32(*n as u32),
            Value::U32s(l) => self.array(4, |b| l.iter().for_each(|n| b.u32(*n))),
            Value::Bytes(l) => self.array(1, |b| b.0.extend_from_slice(l)),
            Value::Strs(l) => self.array(4, |b| l.iter().for_each(|s| b.str(s))),
            Value::Pairs(l) => self.array(8, |b| {
                for (x, y) in l {
                    b.align(8);
                    b.str(x);
                    b.str(y);
                }
            }),
        }
    }
    fn variant(&mut self, v: &Value) {
        self.sig(v.sig());
        self.value(v);
    }
    /// `a(sv)`
    fn props(&mut self, props: &[Property]) {
        self.array(8, |b| {
            for (k, v) in props {
                b.align(8);
                b.str(k);
                b.variant(v);
            }
        });
    }
}

/// Body reader for the few reply types needed (s, o, u at top level).
struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Rd<'_> {
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }
    fn u32(&mut self) -> Option<u32> {
        self.align(4);
        let v = self.b.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_le_bytes(v.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let s = self.b.get(self.pos..self.pos + n)?;
        self.pos += n + 1;
        Some(String::from_utf8_lossy(s).into_owned())
    }
    fn sig(&mut self) -> Option<String> {
        let n = *self.b.get(self.pos)? as usize;
        let s = self.b.get(self.pos + 1..self.pos + 1 + n)?;
        self.pos += n + 2;
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

/// A received message, decoded as far as this client needs.
#[derive(Debug, Default)]
struct Msg {
    kind: u8,
    reply_serial: u32,
    member: String,
    error: String,
    sig: String,
    body: Vec<u8>,
}

impl Msg {
    /// The leading string-like arguments of the body (s, o; u as decimal).
    fn args(&self) -> Vec<String> {
        let mut r = Rd {
            b: &self.body,
            pos: 0,
        };
        let mut out = Vec::new();
        for c in self.sig.chars() {
            let v = match c {
                's' | 'o' => r.str(),
                'u' => r.u32().map(|n| n.to_string()),
                _ => None,
            };
            match v {
                Some(v) => out.push(v),
                None => break,
            }
        }
        out
    }
}

/// A connection to the system bus.
pub struct Conn {
    sock: UnixStream,
    serial: u32,
    /// JobRemoved signals seen while waiting for other replies: (job, result).
    removed: Vec<(String, String)>,
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn proto(what: &str) -> Error {
    Error::msg(format!("systemd D-Bus: {what}"))
}

impl Conn {
    /// Connects and authenticates (EXTERNAL, as our uid) and says Hello.
    pub fn system() -> Result<Conn> {
        let sock = UnixStream::connect(SYSTEM_BUS)
            .map_err(|e| Error::msg(format!("systemd D-Bus: connect {SYSTEM_BUS}: {e}")))?;
        sock.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| proto(&format!("socket timeout: {e}")))?;
        let mut c = Conn {
            sock,
            serial: 0,
            removed: Vec::new(),
        };
        // SAFETY: geteuid has no failure mode.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        c.send_raw(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = c.read_line()?;
        if !line.starts_with("OK ") {
            return Err(proto(&format!("authentication refused: {}", line.trim())));
        }
        c.send_raw(b"BEGIN\r\n")?;
        c.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            "",
            Buf::default(),
        )?;
        Ok(c)
    }

    fn send_raw(&mut self, b: &[u8]) -> Result<()> {
        self.sock
            .write_all(b)
            .map_err(|e| proto(&format!("write: {e}")))
    }

    /// One auth line, read a byte at a time so nothing after it is consumed.
    fn read_line(&mut self) -> Result<String> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(b"\r\n") {
            match self.sock.read(&mut b) {
                Ok(1) => out.push(b[0]),
                Ok(_) => return Err(proto("bus closed the connection")),
                Err(e) => return Err(proto(&format!("read: {e}"))),
            }
            if out.len() > 4096 {
                return Err(proto("auth line too long"));
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn send(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        sig: &str,
        body: Buf,
    ) -> Result<u32> {
        self.serial += 1;
        let mut h = Buf::default();
        h.0.extend_from_slice(&[b'l', 1, 0, 1]);
        h.u32(body.0.len() as u32);
        h.u32(self.serial);
        let field = |h: &mut Buf, code: u8, t: &str, f: &dyn Fn(&mut Buf)| {
            h.align(8);
            h.u8(code);
            h.sig(t);
            f(h);
        };
        h.array(8, |h| {
            field(h, 1, "o", &|h| h.str(path));
            field(h, 2, "s", &|h| h.str(iface));
            field(h, 3, "s", &|h| h.str(member));
            field(h, 6, "s", &|h| h.str(dest));
            if !sig.is_empty() {
                field(h, 8, "g", &|h| h.sig(sig));
            }
        });
        h.align(8);
        h.0.extend_from_slice(&body.0);
        self.send_raw(&h.0)?;
        Ok(self.serial)
    }

    fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.sock.read_exact(&mut v).map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                proto("no answer from systemd (timed out)")
            } else {
                proto(&format!("read: {e}"))
            }
        })?;
        Ok(v)
    }

    fn recv(&mut self) -> Result<Msg> {
        let fixed = self.read_exact(16)?;
        if fixed[0] != b'l' {
            return Err(proto("big-endian messages are not handled"));
        }
        let le =
            |i: usize| u32::from_le_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        let body_len = le(4) as usize;
        let fields_len = le(12) as usize;
        let pad = (16 + fields_len).div_ceil(8) * 8 - 16;
        if body_len > 64 << 20 || fields_len > 1 << 20 {
            return Err(proto("message too large"));
        }
        let fields = self.read_exact(pad)?;
        let body = self.read_exact(body_len)?;
        let mut m = Msg {
            kind: fixed[1],
            body,
            ..Msg::default()
        };
        // Header fields, positions relative to the message start (16 + i).
        let mut all = fixed.clone();
        all.extend_from_slice(&fields);
        let mut r = Rd { b: &all, pos: 16 };
        while r.pos < 16 + fields_len {
            r.align(8);
            if r.pos >= 16 + fields_len {
                break;
            }
            let code = all[r.pos];
            r.pos += 1;
            let t = r.sig().ok_or_else(|| proto("bad header"))?;
            match t.as_str() {
                "s" | "o" => {
                    let s = r.str().ok_or_else(|| proto("bad header"))?;
                    match code {
                        3 => m.member = s,
                        4 => m.error = s,
                        _ => {}
                    }
                }
                "u" => {
                    let n = r.u32().ok_or_else(|| proto("bad header"))?;
                    if code == 5 {
                        m.reply_serial = n;
                    }
                }
                "g" => {
                    let s = r.sig().ok_or_else(|| proto("bad header"))?;
                    if code == 8 {
                        m.sig = s;
                    }
                }
                _ => return Err(proto(&format!("unexpected header field type {t}"))),
            }
        }
        Ok(m)
    }

    /// Notes a JobRemoved signal; returns whether `m` was one.
    fn note_signal(&mut self, m: &Msg) {
        if m.kind == 4 && m.member == "JobRemoved" {
            let a = m.args();
            if a.len() >= 4 {
                self.removed.push((a[1].clone(), a[3].clone()));
            }
        }
    }

    /// Calls a method and waits for its reply; a D-Bus error becomes
    /// `Err("<name>: <message>")`.
    fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        sig: &str,
        body: Buf,
    ) -> Result<Msg> {
        let serial = self.send(dest, path, iface, member, sig, body)?;
        loop {
            let m = self.recv()?;
            self.note_signal(&m);
            if m.reply_serial != serial {
                continue;
            }
            if m.kind == 3 {
                let text = m.args().into_iter().next().unwrap_or_default();
                return Err(Error::msg(format!("{}: {text}", m.error)));
            }
            return Ok(m);
        }
    }

    fn manager_call(&mut self, member: &str, sig: &str, body: Buf) -> Result<Msg> {
        self.call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            member,
            sig,
            body,
        )
    }

    /// Subscribes to the manager's JobRemoved signals (before queuing a job,
    /// so its end cannot be missed).
    pub fn watch_jobs(&mut self) -> Result<()> {
        let mut b = Buf::default();
        b.str("type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved',path='/org/freedesktop/systemd1'");
        self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            b,
        )
        .map(|_| ())
    }

    /// StartTransientUnit(name, "fail", props, []): returns the job path.
    pub fn start_transient(&mut self, name: &str, props: &[Property]) -> Result<String> {
        let mut b = Buf::default();
        b.str(name);
        b.str("fail");
        b.props(props);
        b.array(8, |_| {});
        let m = self.manager_call("StartTransientUnit", "ssa(sv)a(sa(sv))", b)?;
        m.args()
            .into_iter()
            .next()
            .ok_or_else(|| proto("StartTransientUnit: no job in the reply"))
    }

    /// SetUnitProperties(name, runtime=true, props).
    pub fn set_properties(&mut self, name: &str, props: &[Property]) -> Result<()> {
        let mut b = Buf::default();
        b.str(name);
        b.u32(1);
        b.props(props);
        self.manager_call("SetUnitProperties", "sba(sv)", b)
            .map(|_| ())
    }

    /// StopUnit(name, "replace"): returns the job path.
    pub fn stop_unit(&mut self, name: &str) -> Result<String> {
        let mut b = Buf::default();
        b.str(name);
        b.str("replace");
        let m = self.manager_call("StopUnit", "ss", b)?;
        m.args()
            .into_iter()
            .next()
            .ok_or_else(|| proto("StopUnit: no job in the reply"))
    }

    /// Waits for the job to end; returns its result ("done", "failed", ...).
    pub fn wait_job(&mut self, job: &str) -> Result<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.removed.iter().position(|(j, _)| j == job) {
                return Ok(self.removed.swap_remove(i).1);
            }
            if Instant::now() > deadline {
                return Err(proto(&format!("job {job} did not finish in time")));
            }
            let m = self.recv()?;
            self.note_signal(&m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_marshal_with_alignment() {
        let mut b = Buf::default();
        b.props(&[
            ("Delegate".into(), Value::Bool(true)),
            ("MemoryMax".into(), Value::U64(0x0102)),
        ]);
        let v = &b.0;
        // array length excludes the padding before the first element
        assert_eq!(
            u32::from_le_bytes(v[0..4].try_into().unwrap()) as usize,
            v.len() - 8
        );
        // first struct: "Delegate" at 8, variant sig "b", bool 1
        assert_eq!(&v[12..20], b"Delegate");
        assert_eq!(&v[21..24], b"\x01b\0");
        assert_eq!(&v[24..28], &1u32.to_le_bytes());
        // second struct 8-aligned at 32; its u64 8-aligned
        assert_eq!(&v[36..45], b"MemoryMax");
        assert_eq!(&v[46..49], b"\x01t\0");
        assert_eq!(&v[56..64], &0x0102u64.to_le_bytes());
    }

    #[test]
    fn reply_args_decode() {
        let mut b = Buf::default();
        b.u32(7);
        b.str("/org/freedesktop/systemd1/job/7");
        b.str("x.scope");
        b.str("done");
        let m = Msg {
            sig: "uoss".into(),
            body: b.0,
            ..Msg::default()
        };
        assert_eq!(
            m.args(),
            vec!["7", "/org/freedesktop/systemd1/job/7", "x.scope", "done"]
        );
    }
}
