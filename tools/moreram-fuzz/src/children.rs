//! Descriptors and processes: open (also through a second device node), close, dup, and
//! children that fork, exec this program again, switch to another user, or receive a descriptor
//! over a Unix socket (SCM_RIGHTS). A child is another process: it runs a short burst of the
//! same operations with its own identity, and reports the handles it left in its parent's files.

use crate::{
    board::{board, Board, Who, DEAD, EXITING},
    engine::{errno, Engine, Kind},
    model::{ARef, FileM, HandleM, MapM, Me, Model, Tri},
    oracle::{Codes, Ctx, Dim, Op, OK, SEGV},
    probe,
    rng::Rng,
};
use std::{
    ffi::CString,
    io::{Read, Write},
    os::fd::FromRawFd,
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

pub const NOBODY: u32 = 65534;

impl Engine {
    pub fn op_open(&mut self) {
        if self.kind != Kind::Worker {
            return;
        }
        if self.m.files.iter().filter(|f| !f.fds.is_empty()).count() >= 4 {
            return self.op_close();
        }
        let alt = self.alt_node.is_some() && self.rng.pct(15);
        let rdonly = self.rng.pct(8);
        let nonblock = self.rng.pct(30);
        let path = if alt {
            self.alt_node.clone().unwrap()
        } else {
            c"/dev/moreram".into()
        };
        let mut flags = if rdonly { libc::O_RDONLY } else { libc::O_RDWR } | libc::O_CLOEXEC;
        if nonblock {
            flags |= libc::O_NONBLOCK;
        }
        self.ctx.what = format!("open {path:?} flags {flags:#x}");
        // SAFETY: a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        let code = if fd < 0 { errno() as usize } else { OK };
        if !self.ctx.judge(Op::Open, code, Codes::of(&[OK])) || fd < 0 {
            return;
        }
        let id = board().file_id();
        self.m.files.push(FileM {
            id,
            fds: vec![fd],
            nonblock,
            alt,
            crowded: false,
            rdonly,
            foreign: false,
            owner_inst: self.m.me.inst,
            handles: Vec::new(),
            max_handle: 0,
            leaked: 0,
            sibling_freed: false,
            stale_offsets: Vec::new(),
        });
    }

    pub fn op_dup(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        if self.m.files[fi].fds.len() >= 3 {
            return;
        }
        let fd = self.fd_of(fi);
        self.ctx.what = format!("dup fd {fd}");
        // SAFETY: duplicates our own descriptor, close-on-exec.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        let code = if n < 0 { errno() as usize } else { OK };
        if self.ctx.judge(Op::Dup, code, Codes::of(&[OK])) && n >= 0 {
            self.m.files[fi].fds.push(n);
        }
    }

    pub fn op_close(&mut self) {
        if self.kind != Kind::Worker {
            return;
        }
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let id = self.m.files[fi].id;
        let last_fd = self.m.files[fi].fds.len() == 1;
        let mapped = self.m.maps.iter().any(|m| m.file == id);
        let releases = last_fd && !mapped && !self.m.files[fi].foreign;
        if self.m.files[fi].foreign && !self.rng.one_in(20) {
            return;
        }
        if releases {
            self.release_file_begin(id);
        }
        self.ctx.what = format!("close fd {fd} (file {id}, releases {releases})");
        // SAFETY: closes our own descriptor, which nothing else uses.
        let r = unsafe { libc::close(fd) };
        let code = if r < 0 { errno() as usize } else { OK };
        self.ctx.judge(Op::Close, code, Codes::of(&[OK]));
        self.m.files[fi].fds.retain(|&x| x != fd);
        let me = self.m.me.inst;
        if releases {
            self.release_file_end(id);
        } else if self.m.files[fi].fds.is_empty()
            && !mapped
            && !self.m.files[fi].handles.iter().any(|h| h.holder == me)
        {
            // A foreign file (the supervisor's): our descriptor is gone, the file stays open
            // and its handles stay with their holders. The model keeps it, without
            // descriptors, while it lists a handle of ours: we still hold that allocation.
            self.m.files.remove(fi);
        }
    }

    /// Allocations whose last handle of this process is in file `file`.
    fn last_handles_in(&self, file: u32) -> Vec<(HandleM, bool)> {
        let me = self.m.me.inst;
        let Some(f) = self.m.file(file) else {
            return Vec::new();
        };
        f.handles
            .iter()
            .map(|h| {
                let elsewhere = self
                    .m
                    .files
                    .iter()
                    .filter(|g| g.id != file)
                    .flat_map(|g| g.handles.iter())
                    .any(|x| x.a == h.a && x.holder == me);
                (h.clone(), h.holder == me && !elsewhere)
            })
            .collect()
    }

    /// File `file` is about to be released (its last descriptor closed, its last mapping
    /// gone): the pages this process owns through its last handles are in transition, and so are
    /// the tokens made from its handles.
    pub fn release_file_begin(&mut self, file: u32) {
        let me = self.m.me;
        for (h, last) in self.last_handles_in(file) {
            if let Some(mut v) = crate::model::view_in(&mut self.m.privs, h.a) {
                let (meta, pages) = v.split();
                if meta.token_live == 1
                    && self
                        .tokens
                        .iter()
                        .any(|t| t.file == file && t.token == meta.token)
                {
                    meta.token_live = 2;
                }
                if last && h.holder == me.inst {
                    for p in pages.iter_mut() {
                        if p.owner() == Who::Inst(me.inst) {
                            p.owner = Who::Pid(me.pid).encode();
                        }
                    }
                }
                v.note(&format!(
                    "inst {} #{} releases file {file} (handle {}, last {last})",
                    me.inst, self.ctx.op_index, h.h
                ));
            }
        }
    }

    /// File `file` was released: every handle of it is gone.
    pub fn release_file_end(&mut self, file: u32) {
        let me = self.m.me;
        let hs = self.last_handles_in(file);
        let Some(fi) = self.m.files.iter().position(|f| f.id == file) else {
            return;
        };
        self.m.files.remove(fi);
        let tokens: Vec<u64> = self
            .tokens
            .iter()
            .filter(|t| t.file == file)
            .map(|t| t.token)
            .collect();
        self.tokens.retain(|t| t.file != file);
        for (h, last) in &hs {
            if let Some(mut v) = crate::model::view_in(&mut self.m.privs, h.a) {
                let meta = v.meta_mut();
                if tokens.contains(&meta.token) && meta.token_live != 0 {
                    meta.token_live = 0;
                    board().retire_token(meta.token);
                }
                v.note(&format!(
                    "inst {} #{} released file {file} (handle {}, last {last})",
                    me.inst, self.ctx.op_index, h.h
                ));
                let (meta, pages) = v.split();
                if *last && h.holder == me.inst {
                    meta.remove_holder(me.inst);
                    for p in pages.iter_mut() {
                        if p.owner() == Who::Pid(me.pid) || p.owner() == Who::Inst(me.inst) {
                            p.owner = Who::Nobody.encode();
                            p.clear_writers();
                        }
                    }
                }
            }
        }
        for (h, _) in hs {
            self.drop_ref(h.a);
        }
    }

    // --- children --------------------------------------------------------------------------

    pub fn op_child(&mut self) {
        if self.kind != Kind::Worker || board().stopping() {
            return;
        }
        let kind = match self.rng.weighted(&[40, 25, 20, 15]) {
            0 => ChildKind::Fork,
            1 => ChildKind::Setuid,
            2 => ChildKind::Scm,
            _ => ChildKind::Exec,
        };
        let with_fds: Vec<usize> = (0..self.m.files.len())
            .filter(|&i| !self.m.files[i].fds.is_empty() && !self.m.files[i].crowded)
            .collect();
        let Some(&fi) = self.rng.pick(&with_fds) else {
            return;
        };
        self.children += 1;
        let stream = self.rng.u64();
        let file = self.m.files[fi].id;
        let fd = self.m.files[fi].fds[0];
        self.ctx.what = format!("{kind:?} child with file {file} (fd {fd})");
        let (report_rx, report_tx) = pipe();
        let sock = if kind == ChildKind::Scm {
            let mut sv = [0; 2];
            // SAFETY: `sv` has room for both ends.
            unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                    sv.as_mut_ptr(),
                )
            };
            Some(sv)
        } else {
            None
        };
        // SAFETY: the child only runs this program's code (no locks of the other threads are
        // taken: the chaos thread's file and model are not used), then `_exit`s or `exec`s.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            self.ctx.judge(Op::Fork, errno() as usize, Codes::of(&[OK]));
            return;
        }
        if pid == 0 {
            // SAFETY: the parent's end.
            unsafe { libc::close(report_rx) };
            let code = self.child_main(kind, file, fd, report_tx, sock.map(|s| s[1]), stream);
            // SAFETY: leaves without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        // SAFETY: the child's ends.
        unsafe { libc::close(report_tx) };
        if let Some(sv) = sock {
            // SAFETY: the child's end.
            unsafe { libc::close(sv[1]) };
            let ok = send_fd(sv[0], fd, file);
            self.ctx.judge(
                Op::ScmRights,
                if ok { OK } else { errno() as usize },
                Codes::of(&[OK]),
            );
            // SAFETY: our end.
            unsafe { libc::close(sv[0]) };
        }
        // SAFETY: the read end is ours.
        let mut rx = unsafe { std::fs::File::from_raw_fd(report_rx) };
        let mut report = String::new();
        let _ = rx.read_to_string(&mut report);
        let mut st = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        let op = match kind {
            ChildKind::Fork => Op::Fork,
            ChildKind::Setuid => Op::Setuid,
            ChildKind::Scm => Op::ScmRights,
            ChildKind::Exec => Op::Exec,
        };
        self.ctx.what = format!("{kind:?} child pid {pid} with file {file}");
        self.ctx.checked(Dim::Processes);
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            self.ctx.fail(
                Dim::Processes,
                &format!(
                    "child ended with {} {}; its report: {}",
                    if libc::WIFSIGNALED(st) {
                        "signal"
                    } else {
                        "status"
                    },
                    if libc::WIFSIGNALED(st) {
                        libc::WTERMSIG(st)
                    } else {
                        libc::WEXITSTATUS(st)
                    },
                    report.lines().take(3).collect::<Vec<_>>().join(" | ")
                ),
            );
        }
        self.ctx.count_only(op, OK);
        self.adopt_report(&report);
    }

    /// Takes in what a child left in this process's files.
    fn adopt_report(&mut self, report: &str) {
        let mut child = 0;
        for line in report.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.first().copied() {
                Some("I") => {
                    child = w.get(1).and_then(|x| x.parse().ok()).unwrap_or(0);
                }
                Some("H") if w.len() == 11 => {
                    let v: Vec<u64> = w[1..].iter().map(|x| x.parse().unwrap_or(0)).collect();
                    let (file, h, uid, slot, npages, offset, vram, bank, flags, holder) = (
                        v[0] as u32,
                        v[1] as u32,
                        v[2],
                        v[3],
                        v[4],
                        v[5],
                        v[6],
                        v[7] as u32,
                        v[8] as u32,
                        v[9] as u32,
                    );
                    let Some(f) = self.m.file_mut(file) else {
                        if slot != u64::MAX {
                            board().entry_unref(slot as usize, uid);
                        }
                        continue;
                    };
                    f.max_handle = f.max_handle.max(h);
                    f.handles.push(HandleM {
                        h,
                        a: ARef {
                            uid,
                            slot: (slot != u64::MAX).then_some(slot as usize),
                        },
                        holder,
                        npages,
                        offset,
                        vram: vram != 0,
                        bank,
                        flags,
                        opaque: slot == u64::MAX,
                    });
                }
                Some("L") if w.len() == 3 => {
                    let file: u32 = w[1].parse().unwrap_or(0);
                    let n: u32 = w[2].parse().unwrap_or(0);
                    if let Some(f) = self.m.file_mut(file) {
                        f.leaked = f.leaked.max(n);
                    }
                }
                Some("T") if w.len() == 6 => {
                    let v: Vec<u64> = w[1..].iter().map(|x| x.parse().unwrap_or(0)).collect();
                    if self.m.file(v[0] as u32).is_some() {
                        self.tokens.push(crate::engine::MyToken {
                            file: v[0] as u32,
                            handle: v[1] as u32,
                            token: v[2],
                            a: ARef {
                                uid: v[3],
                                slot: (v[4] != u64::MAX).then_some(v[4] as usize),
                            },
                        });
                    }
                }
                Some("S") if w.len() == 2 => {
                    let file: u32 = w[1].parse().unwrap_or(0);
                    if let Some(f) = self.m.file_mut(file) {
                        f.sibling_freed = true;
                    }
                }
                Some("M") if w.len() == 3 => {
                    let file: u32 = w[1].parse().unwrap_or(0);
                    if let Some(f) = self.m.file_mut(file) {
                        f.max_handle = f.max_handle.max(w[2].parse().unwrap_or(0));
                    }
                }
                _ => {}
            }
        }
        if child != 0 {
            board().set_state(child, DEAD);
        }
    }

    /// The child's side: becomes its own instance and runs a burst.
    fn child_main(
        &mut self,
        kind: ChildKind,
        file: u32,
        fd: i32,
        report: i32,
        sock: Option<i32>,
        stream: u64,
    ) -> i32 {
        let b = board();
        // SAFETY: no preconditions.
        let pid = unsafe { libc::getpid() };
        if kind == ChildKind::Setuid {
            // SAFETY: drops to the other user for good.
            unsafe {
                libc::setgroups(0, std::ptr::null());
                if libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
                    return 20;
                }
            }
        }
        if kind == ChildKind::Exec {
            return exec_self(self, file, fd, report, stream);
        }
        // SAFETY: no preconditions.
        let euid = unsafe { libc::geteuid() };
        let parent = self.m.me.inst;
        let inst = b.register(pid, euid, parent, u32::MAX);
        let mut out = unsafe { std::fs::File::from_raw_fd(report) };
        let _ = writeln!(out, "I {inst}");
        self.m.me = Me {
            inst,
            pid,
            euid,
            admin: euid == 0,
        };
        self.kind = Kind::Child;
        self.kcov = None;
        self.rng = Rng::new(self.ctx.seed, stream);
        self.ctx.role = format!("{kind:?} child of instance {parent}");
        self.ctx.inst = inst;
        self.ctx.pid = pid;
        self.ctx.op_index = 0;
        self.hog = None;
        self.tokens.clear();
        self.parent = Some(parent);
        // Mappings are not inherited (VM_DONTCOPY): each address faults now; but those of
        // MORERAM_ALLOC_FORK_COPY allocations, which are the child's own copies.
        let maps = std::mem::take(&mut self.m.maps);
        self.parent_maps = maps.iter().take(8).cloned().collect();
        for m in maps.iter().filter(|m| m.fork_copy != Tri::No) {
            self.fork_copy(m);
        }
        for m in maps.iter().filter(|m| m.fork_copy == Tri::No).take(8) {
            let mut w = [0u64; 1];
            let o = probe::load(&mut w, m.addr as *const u64);
            self.ctx.what = format!("read the parent's mapping {:#x} after fork", m.addr);
            let code = match o {
                probe::Outcome::Ok => OK,
                probe::Outcome::Segv(_) => SEGV,
                probe::Outcome::Bus(_) => crate::oracle::BUS,
            };
            self.ctx
                .judge_in(Dim::Fault, Op::Fork, code, Codes::of(&[SEGV]));
        }
        if let Some(s) = sock {
            // Only the descriptor it is sent.
            for f in self.m.files.iter_mut() {
                for &x in &f.fds {
                    // SAFETY: our inherited copies.
                    unsafe { libc::close(x) };
                }
                f.fds.clear();
            }
            match recv_fd(s) {
                Some((nfd, id)) if id == file => {
                    if let Some(f) = self.m.file_mut(file) {
                        f.fds.push(nfd);
                    }
                }
                _ => return 21,
            }
            let _ = fd;
        }
        self.m.files.retain(|f| !f.fds.is_empty());
        for f in self.m.files.iter_mut() {
            // The parent keeps these files: closing ours releases nothing.
            f.foreign = true;
        }
        self.budget = self.rng.range(10, 40);
        self.deadline = Instant::now() + Duration::from_secs(5);
        self.run();
        self.report_and_exit(&mut out);
        0
    }

    /// Writes what this child leaves in the files it shares with its parent.
    /// A mapping of a `MORERAM_ALLOC_FORK_COPY` allocation, just after the fork: the child's own
    /// copy. It reads (or raises SIGBUS: pages given back, a bank unbound, no memory for the
    /// copy), and a write where the mapping allows one lands in the copy only: the parent and
    /// every other process check their data against the board, which this write is not on.
    /// The copy is then unmapped, and the range reserved again, as the child's model holds no
    /// mapping.
    fn fork_copy(&mut self, m: &MapM) {
        self.ctx.what = format!(
            "read the copy of the parent's mapping {:#x} after fork",
            m.addr
        );
        let code = |o: probe::Outcome| match o {
            probe::Outcome::Ok => OK,
            probe::Outcome::Segv(_) => SEGV,
            probe::Outcome::Bus(_) => crate::oracle::BUS,
        };
        let mut w = [0u64; 1];
        let read = code(probe::load(&mut w, m.addr as *const u64));
        let mut allowed = Codes::of(&[OK, crate::oracle::BUS]);
        if m.dontfork || m.prot & libc::PROT_READ == 0 || m.fork_copy == Tri::Maybe {
            // Not inherited (MADV_DONTFORK, or maybe not a fork-copy allocation: an import), or
            // not readable.
            allowed.add(SEGV);
        }
        self.ctx.judge_in(Dim::Fault, Op::Fork, read, allowed);
        if read == OK && m.prot & libc::PROT_WRITE != 0 {
            self.ctx.what = format!("write the copy of the parent's mapping {:#x}", m.addr);
            let junk = [0x6b6f_7263_6869_6c64u64 ^ u64::from(self.ctx.inst)];
            let wrote = code(probe::store(m.addr as *mut u64, &junk));
            self.ctx.judge_in(Dim::Fault, Op::Fork, wrote, allowed);
        }
        // SAFETY: the child's copy of the parent's mapping, which nothing else in the child
        // uses; PROT_NONE over it, as the region had before.
        unsafe {
            libc::mmap(
                m.addr as *mut libc::c_void,
                m.len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
    }

    fn report_and_exit(&mut self, out: &mut std::fs::File) {
        let me = self.m.me.inst;
        for f in &self.m.files {
            for h in f.handles.iter().filter(|h| h.holder == me) {
                let slot = h.a.slot.map_or(u64::MAX, |s| s as u64);
                let _ = writeln!(
                    out,
                    "H {} {} {} {} {} {} {} {} {} {}",
                    f.id,
                    h.h,
                    h.a.uid,
                    slot,
                    h.npages,
                    h.offset,
                    u8::from(h.vram),
                    h.bank,
                    h.flags,
                    me
                );
            }
            if f.leaked > 0 {
                let _ = writeln!(out, "L {} {}", f.id, f.leaked);
            }
            if f.sibling_freed {
                let _ = writeln!(out, "S {}", f.id);
            }
            for t in self.tokens.iter().filter(|t| t.file == f.id) {
                let slot = t.a.slot.map_or(u64::MAX, |s| s as u64);
                let _ = writeln!(
                    out,
                    "T {} {} {} {} {slot}",
                    f.id, t.handle, t.token, t.a.uid
                );
            }
            let _ = writeln!(out, "M {} {}", f.id, f.max_handle);
        }
        // Entries this child referred to (its imports) are the parent's concern no more.
        board().set_state(me, EXITING);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    Fork,
    Setuid,
    Scm,
    Exec,
}

pub fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for both; no close-on-exec, the exec child keeps the write end.
    unsafe { libc::pipe(fds.as_mut_ptr()) };
    (fds[0], fds[1])
}

/// Sends descriptor `fd` and the file's id over the socket.
fn send_fd(sock: i32, fd: i32, id: u32) -> bool {
    let data = id.to_ne_bytes();
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: 4,
    };
    // SAFETY: builds a control message with one descriptor in a buffer large enough for it.
    unsafe {
        let space = libc::CMSG_SPACE(4) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
        libc::sendmsg(sock, &msg, 0) == 4
    }
}

/// Receives a descriptor and a file id.
fn recv_fd(sock: i32) -> Option<(i32, u32)> {
    let mut data = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: 4,
    };
    // SAFETY: receives into buffers we own, sized for one descriptor.
    unsafe {
        let space = libc::CMSG_SPACE(4) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) != 4 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        Some((fd, u32::from_ne_bytes(data)))
    }
}

/// In the forked child: runs this program again, handing it one file, what the parent knows of
/// its handles, the board and the report pipe.
fn exec_self(e: &mut Engine, file: u32, fd: i32, report: i32, stream: u64) -> i32 {
    let Some(f) = e.m.file(file) else { return 22 };
    // The descriptor must survive exec.
    // SAFETY: clears close-on-exec of our own descriptor.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let mut spec = String::new();
    // Every handle, for TIER; the private ones (no board entry) are opaque to the child.
    for h in &f.handles {
        spec.push_str(&format!(
            "{}:{}:{}:{}:{}:{}:{}:{}:{},",
            h.h,
            h.a.uid,
            h.a.slot.map_or(u64::MAX, |s| s as u64),
            h.npages,
            h.offset,
            u8::from(h.vram),
            h.bank,
            h.flags,
            h.holder
        ));
    }
    // Flags, then how many handles the kernel may hold that nobody knows (item 13).
    let flags = format!(
        "{}{}{}{}{}",
        if f.rdonly { "r" } else { "-" },
        if f.nonblock { "n" } else { "-" },
        if f.alt { "a" } else { "-" },
        if f.sibling_freed { "s" } else { "-" },
        f.leaked,
    );
    let args = [
        "moreram-fuzz".to_string(),
        "--exec-child".into(),
        crate::BOARD_FD.load(Relaxed).to_string(),
        e.m.me.inst.to_string(),
        e.ctx.seed.to_string(),
        stream.to_string(),
        fd.to_string(),
        report.to_string(),
        file.to_string(),
        f.max_handle.to_string(),
        flags,
        if spec.is_empty() { "-".into() } else { spec },
    ];
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap())
        .collect();
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: a NULL-terminated argv of C strings that live until exec.
    unsafe { libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr()) };
    23
}

/// `moreram-fuzz --exec-child BOARD PARENT SEED STREAM FD REPORT FILE MAXH FLAGS SPEC`: the
/// program after exec, with one file of its parent.
pub fn exec_main(args: &[String]) -> i32 {
    if args.len() < 10 {
        return 30;
    }
    let n = |i: usize| args[i].parse::<u64>().unwrap_or(0);
    let b: &Board = Board::attach(n(0) as i32);
    probe::install();
    crate::signals::install_counting();
    let parent = n(1) as u32;
    // SAFETY: no preconditions.
    let (pid, euid) = unsafe { (libc::getpid(), libc::geteuid()) };
    let inst = b.register(pid, euid, parent, u32::MAX);
    let report = n(5) as i32;
    // SAFETY: the inherited write end of the report pipe.
    let mut out = unsafe { std::fs::File::from_raw_fd(report) };
    let _ = writeln!(out, "I {inst}");
    let fd = n(4) as i32;
    // SAFETY: close-on-exec again for our copy.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let file = n(6) as u32;
    let flags = args[8].as_bytes();
    let mut handles = Vec::new();
    for h in args[9].split(',').filter(|s| !s.is_empty() && *s != "-") {
        let v: Vec<u64> = h.split(':').map(|x| x.parse().unwrap_or(0)).collect();
        if v.len() != 9 {
            continue;
        }
        handles.push(HandleM {
            h: v[0] as u32,
            a: ARef {
                uid: v[1],
                slot: (v[2] != u64::MAX).then_some(v[2] as usize),
            },
            holder: v[8] as u32,
            npages: v[3],
            offset: v[4],
            vram: v[5] != 0,
            bank: v[6] as u32,
            flags: v[7] as u32,
            // Private allocations of the parent: their pages are not known here.
            opaque: v[2] == u64::MAX,
        });
    }
    let me = Me {
        inst,
        pid,
        euid,
        admin: euid == 0,
    };
    let mut m = Model::new(me, 64 << 20);
    m.files.push(FileM {
        id: file,
        fds: vec![fd],
        nonblock: flags.get(1) == Some(&b'n'),
        alt: flags.get(2) == Some(&b'a'),
        crowded: false,
        rdonly: flags.first() == Some(&b'r'),
        foreign: true,
        owner_inst: parent,
        handles,
        max_handle: n(7) as u32,
        leaked: std::str::from_utf8(flags.get(4..).unwrap_or(b"0"))
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        sibling_freed: flags.get(3) == Some(&b's'),
        stale_offsets: Vec::new(),
    });
    let seed = n(2);
    let mut e = crate::worker::engine(
        Rng::new(seed, n(3)),
        Ctx {
            seed,
            inst,
            pid,
            role: format!("exec child of instance {parent}"),
            ..Default::default()
        },
        m,
        Kind::Child,
    );
    e.budget = 10 + n(3) % 30;
    e.parent = Some(parent);
    e.deadline = Instant::now() + Duration::from_secs(5);
    e.run();
    e.report_and_exit(&mut out);
    0
}
