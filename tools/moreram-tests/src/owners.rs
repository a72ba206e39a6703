//! Tests of page owners: who may read and write, sharing, grants, gifts, and the attacks
//! against them. Processes are real: forked children, one of them running as another user.

use crate::{check, expect_errno, Test, TestResult};
use moreram::{Allocation, Control, Moreram, Placement};
use std::{
    fs::File,
    io::{self, Read, Write},
    os::fd::FromRawFd,
};

const PAGE: u64 = 4096;
const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

/// The tests of this file.
pub const TESTS: &[Test] = &[
    Test::new("owner-reader", &["owners"], |_| owner_reader()),
    Test::new("grant-revoke", &["owners"], |_| grant_revoke()),
    Test::new("revoke-own-and-all", &["owners"], |_| revoke_own_and_all()),
    Test::new("give", &["owners"], |_| give()),
    Test::new("other-user", &["owners"], |_| other_user()),
    Test::new("owner-exit", &["owners"], |_| owner_exit()),
    Test::new("gone-owner-unnamed", &["owners"], |_| gone_owner_unnamed()),
    Test::new("attack-mprotect-remap", &["owners"], |_| {
        attack_mprotect_remap()
    }),
    Test::new("attack-child-of-reader", &["owners"], |_| {
        attack_child_of_reader()
    }),
    Test::new("attack-pid-reuse", &["owners"], |_| attack_pid_reuse()),
    Test::new("race-give-munmap", &["owners"], |_| race_give_munmap()),
    Test::new("second-node-revoke", &["owners"], |_| second_node_revoke()),
    Test::new("second-node-gone", &["owners"], |_| second_node_gone()),
];

fn e(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// One end of a pair of pipes between two processes.
pub(crate) struct Chan {
    rx: File,
    tx: File,
}

impl Chan {
    pub(crate) fn send(&mut self, v: u64) {
        let _ = self.tx.write_all(&v.to_ne_bytes());
    }

    pub(crate) fn recv(&mut self) -> u64 {
        let mut b = [0u8; 8];
        match self.rx.read_exact(&mut b) {
            Ok(()) => u64::from_ne_bytes(b),
            Err(_) => u64::MAX,
        }
    }
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    unsafe { libc::pipe(fds.as_mut_ptr()) };
    // SAFETY: both descriptors are new and ours.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// A forked child running a closure; its return value is its exit code.
pub(crate) struct Child {
    pub(crate) pid: i32,
    pub(crate) chan: Chan,
}

pub(crate) fn spawn(f: impl FnOnce(&mut Chan) -> i32) -> Child {
    let (prx, ctx) = pipe();
    let (crx, ptx) = pipe();
    // SAFETY: the test program is single-threaded here; the child runs `f` and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut chan = Chan { rx: crx, tx: ctx };
        let code = f(&mut chan);
        // SAFETY: leaves the child without running the parent's destructors twice.
        unsafe { libc::_exit(code) };
    }
    Child {
        pid,
        chan: Chan { rx: prx, tx: ptx },
    }
}

impl Child {
    /// Waits for the child: `(signal, exit code)`.
    pub(crate) fn wait(self) -> (i32, i32) {
        let mut st = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(self.pid, &mut st, 0) };
        if libc::WIFSIGNALED(st) {
            (libc::WTERMSIG(st), -1)
        } else {
            (0, libc::WEXITSTATUS(st))
        }
    }
}

fn fill(p: *mut u8, len: usize, v: u64) {
    for off in (0..len).step_by(8) {
        // SAFETY: `p` maps `len` writable bytes.
        unsafe { p.add(off).cast::<u64>().write_volatile(v) };
    }
}

fn all_are(p: *const u8, len: usize, v: u64) -> bool {
    // SAFETY: `p` maps `len` readable bytes.
    (0..len)
        .step_by(8)
        .all(|off| unsafe { p.add(off).cast::<u64>().read_volatile() } == v)
}

/// An allocation of `size` bytes through `mr`, owned by this process, mapped writable and filled
/// with `v`, and a token to import it.
fn owned_shared(
    mr: &Moreram,
    size: u64,
    v: u64,
) -> Result<(Allocation<'_>, moreram::Mapping, u64), String> {
    let a = mr
        .alloc(size, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let m = a.map().map_err(e("mmap"))?;
    fill(m.as_ptr(), m.len(), v);
    let token = a.share(None).map_err(e("SHARE"))?;
    Ok((a, m, token))
}

/// In a child: imports the token the parent sends on `c` into `mine`, a file of its own, and maps
/// the first `len` bytes read-only. The error is the child's exit code: 11 import, 12 mmap (the
/// caller returns 10 when it cannot open its file).
fn import_ro<'f>(
    mine: &'f Moreram,
    c: &mut Chan,
    len: usize,
) -> Result<(Allocation<'f>, moreram::Mapping), i32> {
    let b = mine.import(c.recv()).map_err(|_| 11)?;
    let ro = mine
        .map_raw(b.mmap_offset(), len, libc::PROT_READ, libc::MAP_SHARED)
        .map_err(|_| 12)?;
    Ok((b, ro))
}

fn errno_of<T>(r: io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

/// The owner writes; a reader (same user, imported by token) maps read-only, sees the owner's
/// writes, cannot map writable, cannot `mprotect` to writable, and its write faults (SIGSEGV).
fn owner_reader() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let (_a, m, token) = owned_shared(&mr, 4 * PAGE, 0x100)?;
    let child = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(b) = mine.import(c.recv()) else {
            return 11;
        };
        if errno_of(b.map()) != libc::EACCES {
            return 12;
        }
        let Ok(ro) = mine.map_raw(
            b.mmap_offset(),
            b.size() as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
        ) else {
            return 13;
        };
        if !all_are(ro.as_ptr(), ro.len(), 0x100) {
            return 14;
        }
        c.send(1);
        c.recv();
        if !all_are(ro.as_ptr(), ro.len(), 0x200) {
            return 15;
        }
        // SAFETY: asks for write access to our own read-only mapping; must be refused.
        if unsafe { libc::mprotect(ro.as_ptr().cast(), PAGE as usize, RW) } == 0 {
            return 16;
        }
        c.send(2);
        // The write must fault.
        fill(ro.as_ptr(), 8, 0xbad);
        17
    });
    let mut child = child;
    child.chan.send(token);
    check!(child.chan.recv() == 1, "reader failed before reading");
    fill(m.as_ptr(), m.len(), 0x200);
    child.chan.send(0);
    let step = child.chan.recv();
    let (sig, code) = child.wait();
    check!(step == 2, "reader stopped early: exit {code}, signal {sig}");
    check!(
        sig == libc::SIGSEGV,
        "reader's write: signal {sig}, exit {code}; expected SIGSEGV"
    );
    check!(
        all_are(m.as_ptr(), m.len(), 0x200),
        "the reader's write got through"
    );
    Ok(())
}

/// The owner grants write on two pages: the grantee maps them writable and writes; the owner
/// revokes: the grantee's next write faults (SIGBUS) and nothing gets through.
fn grant_revoke() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let a = mr
        .alloc(4 * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let m = a.map().map_err(e("mmap"))?;
    let mut child = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(b) = mine.import(c.recv()) else {
            return 11;
        };
        // Writable on the granted pages only.
        if errno_of(b.map()) != libc::EACCES {
            return 12;
        }
        let Ok(w) = mine.map_raw(b.mmap_offset(), 2 * PAGE as usize, RW, libc::MAP_SHARED) else {
            return 13;
        };
        fill(w.as_ptr(), w.len(), 0xc1);
        c.send(1);
        c.recv();
        // Revoked: this write must fault.
        fill(w.as_ptr(), 8, 0xc2);
        14
    });
    let token = a.share(Some(child.pid)).map_err(e("SHARE named"))?;
    a.control(Control::GrantWrite(child.pid), 0, 2 * PAGE)
        .map_err(e("GRANT"))?;
    let r = a.rights(0, 2 * PAGE).map_err(e("RIGHTS"))?;
    check!(
        r.owner == getpid() && r.writers == [child.pid],
        "RIGHTS after grant: {r:?}"
    );
    check!(
        r.readers.contains(&child.pid),
        "grantee not among readers: {r:?}"
    );
    check!(
        a.rights(0, 4 * PAGE).map_err(e("RIGHTS"))?.mixed,
        "pages 0-3 should differ"
    );
    child.chan.send(token);
    check!(child.chan.recv() == 1, "grantee could not write");
    check!(
        all_are(m.as_ptr(), 2 * PAGE as usize, 0xc1),
        "grantee's writes not visible to the owner"
    );
    a.control(Control::RevokeWrite(child.pid), 0, 2 * PAGE)
        .map_err(e("REVOKE"))?;
    child.chan.send(0);
    let (sig, code) = child.wait();
    check!(
        sig == libc::SIGBUS,
        "grantee's write after revoke: signal {sig}, exit {code}; expected SIGBUS"
    );
    check!(
        all_are(m.as_ptr(), 2 * PAGE as usize, 0xc1),
        "a write got through after revoke"
    );
    check!(
        a.rights(0, 2 * PAGE)
            .map_err(e("RIGHTS"))?
            .writers
            .is_empty(),
        "writers left"
    );
    // Only the owner changes rights.
    let other = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(b) = mine.import(c.recv()) else {
            return 11;
        };
        let r = b.control(Control::GrantWrite(getpid()), 0, PAGE);
        if errno_of(r) == libc::EPERM {
            0
        } else {
            12
        }
    });
    let mut other = other;
    let t2 = a.share(None).map_err(e("SHARE"))?;
    other.chan.send(t2);
    let (sig, code) = other.wait();
    check!(
        sig == 0 && code == 0,
        "a reader granted itself write: exit {code}, signal {sig}"
    );
    Ok(())
}

/// A writer may drop its own right, and nobody else's; the owner may revoke every writer at once.
/// A second node for the device, as a container's `/dev` has: `mknod` with the number of
/// `/dev/moreram`. Removed on drop.
struct SecondNode(std::path::PathBuf);

impl SecondNode {
    fn new() -> Result<Self, String> {
        let dev = std::fs::read_to_string("/sys/class/misc/moreram/dev").map_err(e("misc dev"))?;
        let (major, minor) = dev
            .trim()
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or(format!("misc dev {dev:?}"))?;
        let path = std::path::PathBuf::from("/tmp/moreram-second-node");
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new("/tmp/moreram-second-node").map_err(|e| e.to_string())?;
        // SAFETY: a valid path; creates a character device node.
        let r = unsafe {
            libc::mknod(
                c.as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(major, minor),
            )
        };
        check!(r == 0, "mknod: {}", io::Error::last_os_error());
        Ok(Self(path))
    }
}

impl Drop for SecondNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A grantee that maps through a second node of the device loses its write right on REVOKE like
/// any other: every open maps through the one address space the module zaps.
fn second_node_revoke() -> TestResult {
    let node = SecondNode::new()?;
    let mr = Moreram::open().map_err(e("open"))?;
    let a = mr
        .alloc(2 * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let m = a.map().map_err(e("mmap"))?;
    let mut child = spawn(|c| {
        let Ok(mine) = Moreram::open_path(&node.0) else {
            return 10;
        };
        let Ok(b) = mine.import(c.recv()) else {
            return 11;
        };
        let Ok(w) = b.map() else { return 12 };
        fill(w.as_ptr(), w.len(), 0xd1);
        c.send(1);
        c.recv();
        // Revoked: this write must fault.
        fill(w.as_ptr(), 8, 0xd2);
        13
    });
    let token = a.share(Some(child.pid)).map_err(e("SHARE named"))?;
    a.control(Control::GrantWrite(child.pid), 0, 2 * PAGE)
        .map_err(e("GRANT"))?;
    child.chan.send(token);
    check!(child.chan.recv() == 1, "grantee could not write");
    check!(
        all_are(m.as_ptr(), m.len(), 0xd1),
        "grantee's writes through the second node not visible to the owner"
    );
    a.control(Control::RevokeWrite(child.pid), 0, 2 * PAGE)
        .map_err(e("REVOKE"))?;
    child.chan.send(0);
    let (sig, code) = child.wait();
    check!(
        sig == libc::SIGBUS,
        "grantee's write through the second node after revoke: signal {sig}, exit {code}; expected SIGBUS"
    );
    check!(
        all_are(m.as_ptr(), m.len(), 0xd1),
        "a write through the second node got through after revoke"
    );
    Ok(())
}

/// An allocation made through a second node outlives the node: after its file is closed and
/// the node removed, a REVOKE still reaches the grantee's mapping (it used to zap the gone
/// node's address space: a use-after-free, and the grantee kept writing).
fn second_node_gone() -> TestResult {
    let node = SecondNode::new()?;
    let first = Moreram::open_path(&node.0).map_err(e("open the second node"))?;
    let a = first
        .alloc(2 * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let mr = Moreram::open().map_err(e("open"))?;
    let b = mr
        .import(a.share(None).map_err(e("SHARE"))?)
        .map_err(e("IMPORT"))?;
    let m = b.map().map_err(e("mmap"))?;
    fill(m.as_ptr(), m.len(), 0x3c);
    // The first file and the node go while the allocation lives on through the import; give
    // RCU time to free the node's inode.
    a.into_raw();
    drop(first);
    drop(node);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut child = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(g) = mine.import(c.recv()) else {
            return 11;
        };
        let Ok(w) = g.map() else { return 12 };
        fill(w.as_ptr(), 8, 0x3d);
        c.send(1);
        c.recv();
        // Revoked: this write must fault.
        fill(w.as_ptr(), 8, 0x3e);
        13
    });
    let token = b.share(Some(child.pid)).map_err(e("SHARE named"))?;
    b.control(Control::GrantWrite(child.pid), 0, 2 * PAGE)
        .map_err(e("GRANT"))?;
    child.chan.send(token);
    check!(child.chan.recv() == 1, "grantee could not write");
    b.control(Control::RevokeWrite(child.pid), 0, 2 * PAGE)
        .map_err(e("REVOKE after the node went"))?;
    child.chan.send(0);
    let (sig, code) = child.wait();
    check!(
        sig == libc::SIGBUS,
        "grantee's write after revoke: signal {sig}, exit {code}; expected SIGBUS"
    );
    check!(
        all_are(m.as_ptr(), 8, 0x3d),
        "a write got through after revoke"
    );
    Ok(())
}

fn revoke_own_and_all() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let a = mr
        .alloc(2 * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let mut writers = Vec::new();
    for _ in 0..2 {
        writers.push(spawn(|c| {
            let Ok(mine) = Moreram::open() else { return 10 };
            let Ok(b) = mine.import(c.recv()) else {
                return 11;
            };
            c.send(1);
            // Told to drop our own right (1) or to try the other writer's (2).
            match c.recv() {
                1 => {
                    if b.control(Control::RevokeWrite(getpid()), 0, b.size())
                        .is_err()
                    {
                        return 12;
                    }
                    match b.rights(0, b.size()) {
                        Ok(r) if !r.caller.write => 0,
                        _ => 13,
                    }
                }
                other => {
                    let victim = other as i32;
                    let r = b.control(Control::RevokeWrite(victim), 0, b.size());
                    c.send(if errno_of(r) == libc::EPERM { 0 } else { 14 });
                    // Alive, and a writer, until told to go.
                    c.recv();
                    0
                }
            }
        }));
    }
    let token = a.share(None).map_err(e("SHARE"))?;
    for w in writers.iter_mut() {
        a.control(Control::GrantWrite(w.pid), 0, a.size())
            .map_err(e("GRANT"))?;
        w.chan.send(token);
        check!(w.chan.recv() == 1, "writer {} could not import", w.pid);
    }
    let r = a.rights(0, a.size()).map_err(e("RIGHTS"))?;
    check!(r.writers.len() == 2, "two writers expected: {r:?}");
    let mut second = writers.pop().ok_or("no writer")?;
    let mut first = writers.pop().ok_or("no writer")?;
    let first_pid = first.pid;
    let second_pid = second.pid;
    // The second may not take anybody else's right (the first is alive and a writer).
    second.chan.send(first_pid as u64);
    check!(
        second.chan.recv() == 0,
        "a writer revoked another's right, or failed otherwise"
    );
    // The first drops its own.
    first.chan.send(1);
    let (sig, code) = first.wait();
    check!(
        sig == 0 && code == 0,
        "a writer could not drop its own right: exit {code}, signal {sig}"
    );
    let r = a.rights(0, a.size()).map_err(e("RIGHTS"))?;
    check!(
        r.writers == [second_pid],
        "after the first dropped its right: {r:?}"
    );
    // A writer that has exited keeps its right (nothing can use it) but is not reported: its
    // number may be another process's by now.
    second.chan.send(0);
    let (sig, code) = second.wait();
    check!(
        sig == 0 && code == 0,
        "second writer: exit {code}, signal {sig}"
    );
    let r = a.rights(0, a.size()).map_err(e("RIGHTS"))?;
    check!(
        r.writers.is_empty() && r.owner == getpid(),
        "after the second writer exited: {r:?}"
    );
    // The owner takes it from everyone.
    a.control(Control::RevokeWriteAll, 0, a.size())
        .map_err(e("REVOKE all"))?;
    let r = a.rights(0, a.size()).map_err(e("RIGHTS"))?;
    check!(
        r.writers.is_empty() && r.owner == getpid(),
        "after revoking all: {r:?}"
    );
    check!(r.caller.write, "the owner lost its own write right");
    Ok(())
}

/// GIVE: the old owner's next write faults, the new owner writes, and the pages survive the old
/// owner's exit; the report shows the new owner.
fn give() -> TestResult {
    let mut b = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(h) = mine.import(c.recv()) else {
            return 11;
        };
        c.send(1);
        c.recv(); // the old owner is gone
        let Ok(w) = h.map() else { return 12 };
        if !all_are(w.as_ptr(), w.len(), 0xa) {
            return 13;
        }
        fill(w.as_ptr(), w.len(), 0xb);
        if !all_are(w.as_ptr(), w.len(), 0xb) {
            return 14;
        }
        match h.rights(0, h.size()) {
            Ok(r) if r.owner == getpid() && r.caller.owner => {}
            _ => return 15,
        }
        match mine.procs() {
            Ok(p)
                if p.iter()
                    .any(|p| p.pid == getpid() && p.vram + p.system >= h.size()) => {}
            _ => return 16,
        }
        0
    });
    let bpid = b.pid;
    let mut a = spawn(move |c| {
        let Ok(mine) = Moreram::open() else { return 20 };
        let Ok(h) = mine.alloc(4 * PAGE, Placement::PreferVram, false) else {
            return 21;
        };
        let Ok(m) = h.map() else { return 22 };
        fill(m.as_ptr(), m.len(), 0xa);
        let Ok(token) = h.share(Some(bpid)) else {
            return 23;
        };
        c.send(token);
        c.recv(); // b imported
        if h.control(Control::Give(bpid), 0, h.size()).is_err() {
            return 24;
        }
        c.send(1);
        // Given away: this write must fault.
        fill(m.as_ptr(), 8, 0xdead);
        25
    });
    let token = a.chan.recv();
    b.chan.send(token);
    check!(b.chan.recv() == 1, "receiver could not import");
    a.chan.send(0);
    let given = a.chan.recv();
    let (sig, code) = a.wait();
    check!(given == 1, "GIVE failed in the old owner: exit {code}");
    check!(
        sig == libc::SIGBUS,
        "old owner's write after GIVE: signal {sig}, exit {code}; expected SIGBUS"
    );
    b.chan.send(0);
    let (sig, code) = b.wait();
    check!(
        sig == 0 && code == 0,
        "new owner: exit {code}, signal {sig}"
    );
    Ok(())
}

/// Another user gets nothing without being named: no import by token, no mmap or query through
/// an inherited file. Named, it may import and read, and still not write.
fn other_user() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let (a, _m, token) = owned_shared(&mr, 2 * PAGE, 0x5)?;
    let inherited = &mr;
    let mut child = spawn(|c| {
        // SAFETY: drops root for good in this child.
        if unsafe { libc::setgid(65534) } != 0 || unsafe { libc::setuid(65534) } != 0 {
            return 10;
        }
        let Ok(mine) = Moreram::open() else { return 11 };
        if errno_of(mine.import(c.recv())) != libc::EACCES {
            return 12;
        }
        if errno_of(inherited.query_raw(a.handle())) != libc::EACCES {
            return 13;
        }
        if errno_of(inherited.rights_raw(a.handle(), 0, PAGE)) != libc::EACCES {
            return 14;
        }
        let ro = inherited.map_raw(
            a.mmap_offset(),
            PAGE as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
        );
        if errno_of(ro) != libc::EACCES {
            return 15;
        }
        c.send(1);
        let Ok(b) = mine.import(c.recv()) else {
            return 16;
        };
        let Ok(ro) = mine.map_raw(
            b.mmap_offset(),
            b.size() as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
        ) else {
            return 17;
        };
        if !all_are(ro.as_ptr(), ro.len(), 0x5) {
            return 18;
        }
        if errno_of(b.map()) != libc::EACCES {
            return 19;
        }
        0
    });
    child.chan.send(token);
    check!(
        child.chan.recv() == 1,
        "the other user got in without a name"
    );
    let named = a.share(Some(child.pid)).map_err(e("SHARE named"))?;
    child.chan.send(named);
    let (sig, code) = child.wait();
    check!(
        sig == 0 && code == 0,
        "other user: exit {code}, signal {sig}"
    );
    Ok(())
}

fn bochs_free(mr: &Moreram) -> Result<(u32, u64), String> {
    let b = mr
        .banks()
        .map_err(e("BANKS"))?
        .into_iter()
        .find(|b| b.vendor == 0x1234)
        .ok_or("no bochs bank")?;
    Ok((b.index, b.free))
}

/// When the owner exits, the pages it still owns go back to the pool once nothing maps them,
/// even though another process still holds the allocation; mapped, they stay until unmapped.
/// Pages whose owner has exited while its handle lives on in another process's file (a child's
/// allocation in the file it inherited) keep that owner, but RIGHTS reports it as 0, not by a
/// number that may be another process's by now; the pages stay readable through the handle.
fn gone_owner_unnamed() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let mut child = spawn(|c| {
        // Through the parent's file, inherited: the handle is the file's, the pages the child's.
        let Ok(h) = mr.alloc(2 * PAGE, Placement::PreferVram, false) else {
            return 10;
        };
        c.send(u64::from(h.into_raw()));
        c.recv();
        0
    });
    let handle = u32::try_from(child.chan.recv()).map_err(|e| e.to_string())?;
    let r = mr.rights_raw(handle, 0, PAGE).map_err(e("RIGHTS"))?;
    check!(
        r.owner == child.pid,
        "owner {} while the child {} lives",
        r.owner,
        child.pid
    );
    let pid = child.pid;
    child.chan.send(0);
    let (sig, code) = child.wait();
    check!(sig == 0 && code == 0, "child: exit {code}, signal {sig}");
    let r = mr.rights_raw(handle, 0, PAGE).map_err(e("RIGHTS"))?;
    check!(
        r.owner == 0 && r.caller.read && !r.caller.owner,
        "after the owner {pid} exited: {r:?}"
    );
    Ok(())
}

fn owner_exit() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let (bank, free0) = bochs_free(&mr)?;
    for mapped in [false, true] {
        let mut owner = spawn(move |c| {
            let Ok(mine) = Moreram::open() else { return 10 };
            let Ok(h) = mine.alloc(4 * PAGE, Placement::Bank(bank), false) else {
                return 11;
            };
            let Ok(t) = h.share(None) else {
                return 12;
            };
            c.send(t);
            c.recv();
            // The owner holds the allocation until its file goes.
            h.into_raw();
            0
        });
        let h = mr.import(owner.chan.recv()).map_err(e("IMPORT"))?;
        let ro = if mapped {
            Some(
                mr.map_raw(
                    h.mmap_offset(),
                    h.size() as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                )
                .map_err(e("mmap"))?,
            )
        } else {
            None
        };
        check!(
            bochs_free(&mr)?.1 == free0 - 4 * PAGE,
            "allocation not in the bank"
        );
        owner.chan.send(0);
        let (sig, code) = owner.wait();
        check!(sig == 0 && code == 0, "owner: exit {code}, signal {sig}");
        if let Some(ro) = ro {
            check!(
                bochs_free(&mr)?.1 == free0 - 4 * PAGE,
                "pages went back while still mapped"
            );
            check!(all_are(ro.as_ptr(), ro.len(), 0), "mapped pages changed");
            drop(ro);
        }
        check!(
            bochs_free(&mr)?.1 == free0,
            "the dead owner's pages did not go back (mapped: {mapped})"
        );
        let r = h.rights(0, h.size()).map_err(e("RIGHTS"))?;
        check!(
            r.owner == 0,
            "pages of a dead owner still owned by {}",
            r.owner
        );
        expect_errno(
            "mmap of released pages",
            mr.map_raw(
                h.mmap_offset(),
                PAGE as usize,
                libc::PROT_READ,
                libc::MAP_SHARED,
            ),
            libc::EACCES,
        )?;
        h.free().map_err(e("FREE"))?;
    }
    Ok(())
}

/// A reader `mprotect`s its read-only mapping, then munmaps it and maps the allocation writable
/// at the same address, then maps anonymous memory there and writes: the owner's pages never
/// change.
fn attack_mprotect_remap() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let (_a, m, token) = owned_shared(&mr, PAGE, 0x77)?;
    let mut child = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let (b, ro) = match import_ro(&mine, c, PAGE as usize) {
            Ok(x) => x,
            Err(code) => return code,
        };
        let addr = ro.as_ptr();
        // SAFETY: our own mapping.
        if unsafe { libc::mprotect(addr.cast(), PAGE as usize, RW) } == 0 {
            return 13;
        }
        drop(ro);
        for _ in 0..100 {
            // SAFETY: maps over an address we just unmapped ourselves.
            let p = unsafe {
                libc::mmap(
                    addr.cast(),
                    PAGE as usize,
                    RW,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&mine)),
                    b.mmap_offset() as libc::off_t,
                )
            };
            if p != libc::MAP_FAILED {
                return 14;
            }
            // SAFETY: as above, anonymous memory of our own.
            let q = unsafe {
                libc::mmap(
                    addr.cast(),
                    PAGE as usize,
                    RW,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if q == libc::MAP_FAILED {
                return 15;
            }
            fill(q.cast(), PAGE as usize, 0xbad);
            // SAFETY: unmaps it again.
            unsafe { libc::munmap(q, PAGE as usize) };
            // And the read-only mapping again at the same place.
            // SAFETY: as above.
            let r = unsafe {
                libc::mmap(
                    addr.cast(),
                    PAGE as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&mine)),
                    b.mmap_offset() as libc::off_t,
                )
            };
            if r == libc::MAP_FAILED || !all_are(r.cast(), PAGE as usize, 0x77) {
                return 16;
            }
            // SAFETY: unmaps it.
            unsafe { libc::munmap(r, PAGE as usize) };
        }
        0
    });
    child.chan.send(token);
    let (sig, code) = child.wait();
    check!(sig == 0 && code == 0, "attacker: exit {code}, signal {sig}");
    check!(
        all_are(m.as_ptr(), m.len(), 0x77),
        "the owner's page changed"
    );
    Ok(())
}

/// A child of a reader inherits no mapping, and gets no write access through the reader's file.
fn attack_child_of_reader() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let (_a, m, token) = owned_shared(&mr, PAGE, 0x42)?;
    let mut reader = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let (b, ro) = match import_ro(&mine, c, PAGE as usize) {
            Ok(x) => x,
            Err(code) => return code,
        };
        let addr = ro.as_ptr() as usize;
        let grandchild = spawn(|_| {
            if errno_of(b.map()) != libc::EACCES {
                return 30;
            }
            // No mapping was inherited: this faults (SIGSEGV).
            fill(addr as *mut u8, 8, 0xbad);
            31
        });
        let (sig, _) = grandchild.wait();
        if sig != libc::SIGSEGV {
            return 13;
        }
        0
    });
    reader.chan.send(token);
    let (sig, code) = reader.wait();
    check!(
        sig == 0 && code == 0,
        "reader: exit {code}, signal {sig} (13: the child was not stopped)"
    );
    check!(
        all_are(m.as_ptr(), m.len(), 0x42),
        "the owner's page changed"
    );
    Ok(())
}

/// A grant names a process, not a number: a new process that gets the grantee's pid number after
/// it exited has no write access.
fn attack_pid_reuse() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let a = mr
        .alloc(PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let m = a.map().map_err(e("mmap"))?;
    fill(m.as_ptr(), m.len(), 0x99);
    // After a wrap, pid numbers start again above the 300 reserved ones: make the victim's number
    // one that can come back.
    loop {
        let c = spawn(|_| 0);
        let pid = c.pid;
        c.wait();
        if pid >= 310 {
            break;
        }
    }
    let grantee = spawn(|c| {
        c.recv();
        0
    });
    let victim = grantee.pid;
    a.control(Control::GrantWrite(victim), 0, PAGE)
        .map_err(e("GRANT"))?;
    let mut grantee = grantee;
    grantee.chan.send(0);
    grantee.wait();
    let token = a.share(None).map_err(e("SHARE"))?;
    // Make pid numbers wrap quickly, then fork until the number comes back.
    let pid_max =
        std::fs::read_to_string("/proc/sys/kernel/pid_max").map_err(|er| er.to_string())?;
    std::fs::write("/proc/sys/kernel/pid_max", format!("{}", victim + 40))
        .map_err(|er| format!("pid_max: {er}"))?;
    let mut result = Err(format!("pid {victim} never came back"));
    for _ in 0..2000 {
        let mut impostor = spawn(|c| {
            if getpid() != victim {
                return 1;
            }
            let Ok(mine) = Moreram::open() else { return 10 };
            let Ok(b) = mine.import(c.recv()) else {
                return 11;
            };
            if errno_of(b.map()) != libc::EACCES {
                return 12;
            }
            match b.rights(0, PAGE) {
                Ok(r) if !r.caller.write => {}
                _ => return 13,
            }
            if errno_of(b.control(Control::RevokeWrite(victim), 0, PAGE)) != libc::EPERM {
                return 14;
            }
            0
        });
        let is_victim = impostor.pid == victim;
        impostor.chan.send(token);
        let (sig, code) = impostor.wait();
        if is_victim {
            result = if sig == 0 && code == 0 {
                Ok(())
            } else {
                Err(format!(
                    "process with the reused pid {victim}: exit {code}, signal {sig}"
                ))
            };
            break;
        }
    }
    let _ = std::fs::write("/proc/sys/kernel/pid_max", pid_max.trim());
    result?;
    check!(
        all_are(m.as_ptr(), m.len(), 0x99),
        "the owner's page changed"
    );
    Ok(())
}

/// The owner maps, writes and unmaps pages in one thread while another gives them away one by
/// one, thousands of times; the new owner writes each page as soon as it has it. No write of the
/// old owner may land after its GIVE returned: every page ends with the new owner's bytes.
fn race_give_munmap() -> TestResult {
    const PAGES: u64 = 256;
    const ROUNDS: u64 = 8;
    let mr = Moreram::open().map_err(e("open"))?;
    let me = getpid();
    let (mut total, mut stopped, mut round) = (0, 0, 0);
    // Rounds end early when the old owner is stopped: go on until enough gives raced.
    while total < PAGES * ROUNDS && round < 4 * ROUNDS {
        round += 1;
        let mut owner = spawn(move |c| {
            let Ok(mine) = Moreram::open() else { return 10 };
            let Ok(h) = mine.alloc(PAGES * PAGE, Placement::PreferVram, false) else {
                return 11;
            };
            let Ok(t) = h.share(Some(me)) else {
                return 12;
            };
            c.send(t);
            c.recv();
            let stop = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let k = i % PAGES;
                        if let Ok(w) = mine.map_raw(
                            h.mmap_offset() + k * PAGE,
                            PAGE as usize,
                            RW,
                            libc::MAP_SHARED,
                        ) {
                            fill(w.as_ptr(), 64, 0xaaaa_0000 + i);
                        }
                        i += 1;
                    }
                });
                for k in 0..PAGES {
                    if h.control(Control::Give(me), k * PAGE, PAGE).is_err() {
                        break;
                    }
                    c.send(k);
                }
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            c.send(u64::MAX - 1);
            0
        });
        let h: Allocation = mr.import(owner.chan.recv()).map_err(e("IMPORT"))?;
        owner.chan.send(0);
        // Pages are given in order; `given` of them reached us.
        let mut given = 0;
        loop {
            let k = owner.chan.recv();
            if k >= PAGES {
                break;
            }
            let w = mr
                .map_raw(
                    h.mmap_offset() + k * PAGE,
                    PAGE as usize,
                    RW,
                    libc::MAP_SHARED,
                )
                .map_err(e("new owner's mmap"))?;
            fill(w.as_ptr(), PAGE as usize, 0xbbbb_0000 + k);
            given = k + 1;
        }
        let (sig, code) = owner.wait();
        // The old owner either finished, or wrote to a page just after giving it away and was
        // stopped with SIGBUS (then the pages it had not given yet went back to the pool).
        check!(
            (sig == 0 && code == 0 && given == PAGES) || sig == libc::SIGBUS,
            "round {round}: old owner ended with signal {sig}, exit {code}, {given} pages given"
        );
        if sig == libc::SIGBUS {
            stopped += 1;
        }
        total += given;
        if given > 0 {
            let all = mr
                .map_raw(
                    h.mmap_offset(),
                    (given * PAGE) as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                )
                .map_err(e("mmap given"))?;
            for k in 0..given {
                // SAFETY: inside the mapping.
                let p = unsafe { all.as_ptr().add((k * PAGE) as usize) };
                check!(
                    all_are(p, 64, 0xbbbb_0000 + k),
                    "round {round}: page {k} was written after it was given away"
                );
            }
        }
        h.free().map_err(e("FREE"))?;
    }
    println!(
        "moreram-info: race-give-munmap: {total} gives raced with mmap/write/munmap; \
         {stopped} of {round} old owners stopped by SIGBUS"
    );
    Ok(())
}
