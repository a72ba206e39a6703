//! Mappings and memory: mmap with every kind of argument, munmap of parts, mremap, mprotect,
//! madvise, writes that must or must not fault, reads checked word by word against the model,
//! reads through /proc/self/mem and process_vm_readv, and races between threads.

use crate::{
    board::{board, PageRec, Who},
    engine::{errno, ioctl, Engine, PAGE},
    model::{
        holds, may_read, may_write, ownerless, owns, unbound, view_in, MapM, Region, Tri, View,
    },
    oracle::{code_of, d, Codes, Dim, Exp, Op, BUS, OK, SEGV},
    pattern::{self, Expect, WORDS},
    probe::{self, Outcome},
};
use moreram::sys;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering::*};

/// What /proc/self/maps says is at `addr`, and what the model has around it: for a failure
/// report.
pub fn where_is(addr: usize, maps: &[MapM]) -> String {
    let kernel = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| {
                    let mut r = l.split_whitespace().next().unwrap_or("").split('-');
                    let lo = usize::from_str_radix(r.next().unwrap_or(""), 16).unwrap_or(1);
                    let hi = usize::from_str_radix(r.next().unwrap_or(""), 16).unwrap_or(0);
                    lo <= addr && addr < hi
                })
                .map(str::to_string)
        })
        .unwrap_or_else(|| "nothing".into());
    let model: Vec<String> = maps
        .iter()
        .filter(|m| m.addr <= addr + (1 << 20) && addr < m.addr + m.len + (1 << 20))
        .map(|m| {
            format!(
                "{:#x}+{:#x} prot {:#x} first {}",
                m.addr, m.len, m.prot, m.first
            )
        })
        .collect();
    format!("kernel: {kernel}; model: {}", model.join(", "))
}

fn outcome_code(o: Outcome) -> usize {
    match o {
        Outcome::Ok => OK,
        Outcome::Segv(_) => SEGV,
        Outcome::Bus(_) => BUS,
    }
}

fn partial(o: Outcome) -> bool {
    matches!(o, Outcome::Segv(n) | Outcome::Bus(n) if n > 0)
}

/// What an access to page `ap` of the allocation through mapping `mm` may do.
pub fn access_codes(mm: &MapM, v: &View, ap: u64, write: bool, me: &crate::model::Me) -> Codes {
    let readable = mm.prot & (libc::PROT_READ | libc::PROT_WRITE) != 0;
    if !readable || (write && mm.prot & libc::PROT_WRITE == 0) {
        return Codes::of(&[SEGV]);
    }
    let gone = unbound(v.meta());
    if gone == Tri::Yes {
        return Codes::of(&[BUS]);
    }
    let mut c = if write {
        match may_write(&v.pages()[ap as usize], me) {
            Tri::Yes => Codes::of(&[OK]),
            Tri::No => Codes::of(&[BUS]),
            Tri::Maybe => Codes::of(&[OK, BUS]),
        }
    } else {
        Codes::of(&[OK])
    };
    if gone == Tri::Maybe {
        c.add(BUS);
    }
    c
}

/// What a page holds, by the model.
fn expect_of(r: &PageRec, tainted: bool) -> Expect {
    if r.torn != 0 || tainted {
        Expect::AnyOwn
    } else if r.last_writer == 0 {
        Expect::Zero
    } else {
        Expect::Exact {
            writer: r.last_writer,
            gen: r.gen,
        }
    }
}

impl Engine {
    fn pick_map(&mut self) -> Option<usize> {
        if self.m.maps.is_empty() {
            None
        } else {
            Some(self.rng.below(self.m.maps.len() as u64) as usize)
        }
    }

    // --- mmap ------------------------------------------------------------------------------

    pub fn op_mmap(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let f = self.m.files[fi].clone();
        let kind = self.rng.weighted(&[78, 6, 4, 3, 3, 3, 2, 1]);
        let hm = self.pick_handle(fi, false);
        if kind == 0 && hm.is_none() {
            return;
        }
        let (mut offset, mut npages) = match (&hm, kind) {
            (Some(h), 0) | (Some(h), 1) => {
                let s = self.rng.below(h.npages);
                let max = (h.npages - s).min(if h.npages > 64 { 16 } else { 64 });
                let n = self.rng.range(1, max);
                if kind == 1 {
                    (h.offset + s * PAGE, h.npages - s + self.rng.range(1, 4))
                } else {
                    (h.offset + s * PAGE, n)
                }
            }
            _ => {
                let off = match self.rng.below(3) {
                    0 if !f.stale_offsets.is_empty() => {
                        f.stale_offsets[self.rng.below(f.stale_offsets.len() as u64) as usize]
                    }
                    1 => 0,
                    _ => (self.rng.below(1 << 24) + 1) * PAGE,
                };
                (off, self.rng.range(1, 4))
            }
        };
        let mut prot = match self.rng.weighted(&[50, 38, 5, 7]) {
            0 => libc::PROT_READ | libc::PROT_WRITE,
            1 => libc::PROT_READ,
            2 => libc::PROT_WRITE,
            _ => libc::PROT_NONE,
        };
        let mut flags = if self.rng.pct(90) {
            libc::MAP_SHARED
        } else {
            libc::MAP_SHARED_VALIDATE
        };
        if self.rng.pct(10) {
            flags |= libc::MAP_POPULATE;
        }
        if self.rng.pct(5) {
            flags |= libc::MAP_NORESERVE;
        }
        match kind {
            3 => flags = libc::MAP_PRIVATE,
            4 => prot |= libc::PROT_EXEC,
            5 => npages = 0,
            6 => offset += 1 + self.rng.below(PAGE - 1),
            _ => {}
        }
        let len = (npages * PAGE) as usize;
        // Where: a place of the region (MAP_FIXED), or anywhere.
        let placed = if self.rng.pct(80) && len > 0 {
            self.m.region.take(len, self.rng.u64())
        } else {
            None
        };
        let (addr, mflags) = match placed {
            Some(a) => (a, flags | libc::MAP_FIXED),
            None => (0, flags),
        };
        self.what(format!(
            "mmap fd {fd} offset {offset:#x} len {len:#x} prot {prot:#x} flags {mflags:#x} kind {kind}"
        ));
        // What the file has at that offset.
        let target = f
            .handles
            .iter()
            .find(|h| !h.opaque && h.offset <= offset && offset < h.offset + h.npages * PAGE);
        let mut exp = Exp::new();
        let mut certain_target = true;
        if len == 0 || offset % PAGE != 0 {
            exp.when(libc::EINVAL, true);
        } else if f.rdonly && prot & libc::PROT_WRITE != 0 && flags & libc::MAP_SHARED != 0 {
            // The VFS: no shared writable mapping of a file opened read-only.
            exp.when(libc::EACCES, true);
        } else if flags & libc::MAP_SHARED == 0 || kind == 3 {
            exp.when(libc::EINVAL, true);
        } else if prot & libc::PROT_EXEC != 0 {
            exp.when(libc::EPERM, true);
        } else {
            match target {
                None => {
                    exp.when(libc::EINVAL, true);
                    if f.leaked > 0 || f.crowded {
                        // A handle we do not know of may be there.
                        exp.also(OK as i32).also(libc::EACCES);
                        certain_target = false;
                    }
                }
                Some(h) => {
                    let s = (offset - h.offset) / PAGE;
                    let e = s + npages;
                    exp.when(libc::EINVAL, e > h.npages);
                    if f.rdonly && prot & libc::PROT_WRITE != 0 {
                        exp.when(libc::EACCES, true);
                    }
                    if e <= h.npages {
                        match view_in(&mut self.m.privs, h.a) {
                            None => return,
                            Some(v) => {
                                exp.on(libc::EACCES, may_read(v.meta(), v.pages(), &me).not());
                                let pages = &v.pages()[s as usize..e as usize];
                                // Pages that went back (ownerless and mapped by nobody).
                                let mut gone = Tri::No;
                                for (k, p) in pages.iter().enumerate() {
                                    let mine = self.m.maps.iter().any(|m| {
                                        m.a == h.a
                                            && m.first <= s + k as u64
                                            && s + (k as u64) < m.first + m.npages()
                                    });
                                    let o = ownerless(p);
                                    gone = gone.or(if mine { Tri::No } else { o.weaken() });
                                }
                                exp.on(libc::EACCES, gone);
                                if prot & libc::PROT_WRITE != 0 {
                                    let w = pages
                                        .iter()
                                        .fold(Tri::Yes, |t, p| t.and(may_write(p, &me)));
                                    exp.on(libc::EACCES, w.not());
                                }
                            }
                        }
                    }
                }
            }
        }
        // SAFETY: maps the file at an address we reserved (or anywhere); a failure is judged.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                len,
                prot,
                mflags,
                fd,
                offset as libc::off_t,
            )
        };
        let r: Result<usize, i32> = if p == libc::MAP_FAILED {
            Err(errno())
        } else {
            Ok(p as usize)
        };
        let code = code_of(&r);
        let sibling_freed = target.is_some() && f.sibling_freed && code == libc::EINVAL as usize;
        let mut judged = false;
        if f.rdonly
            && code == libc::EINVAL as usize
            && !exp.codes().has(code)
            && flags & libc::MAP_SHARED != 0
        {
            // do_mmap clears VM_SHARED for a file not open for writing (VM_MAYSHARE stays);
            // the module takes that for MAP_PRIVATE.
            self.ctx.count_only(Op::Mmap, code);
            judged = self.ctx.defect(
                d::RDONLY_MMAP,
                Dim::Errno,
                "mmap(MAP_SHARED) of a file opened O_RDONLY: EINVAL",
            );
        } else if sibling_freed && !exp.codes().has(code) {
            // Issue 10 item 10: the handle's sibling in this file was freed.
            self.ctx.count_only(Op::Mmap, code);
            judged = self.ctx.defect(
                d::IMPORT_SAME_FILE,
                Dim::Errno,
                "mmap of a handle whose sibling in the same file was freed: EINVAL",
            );
        } else if exp.codes().has(code) || target.is_none() || code != libc::EINVAL as usize {
            judged = self.ctx.judge(Op::Mmap, code, exp.codes());
        } else if let (Some(h), true) = (target, code == libc::EINVAL as usize) {
            // What the kernel thinks of the handle: if QUERY finds it where the model says, the
            // file's lookup by offset lost it (issue 10 item 10: it is keyed by allocation, and
            // a sibling handle of the same allocation in this file was freed, maybe by a child).
            let mut q = sys::moreram_query {
                handle: h.h,
                ..Default::default()
            };
            let qr = ioctl(fd, sys::MORERAM_IOC_QUERY, &mut q);
            let w = format!(
                "mmap EINVAL: handle {} (holder {}, offset {:#x}, {} pages) QUERY says {:?} offset {:#x} size {:#x}; sibling freed known {}",
                h.h, h.holder, h.offset, h.npages, qr, q.mmap_offset, q.size, f.sibling_freed
            );
            self.ctx.count_only(Op::Mmap, code);
            if qr.is_ok() && q.mmap_offset == h.offset && q.size == h.npages * PAGE {
                self.ctx.defect(d::IMPORT_SAME_FILE, Dim::Errno, &w);
            } else {
                self.ctx.fail(Dim::Errno, &w);
            }
        }
        match r {
            Err(_) => {
                // A failed MAP_FIXED may have taken the reservation away, and another thread
                // may have mapped something in the hole since: the range is not used again.
                // (Only an atomic PROT_NONE overlay gives a range back to the region.)
            }
            Ok(at) => {
                if placed.is_some() && at != addr {
                    self.ctx
                        .fail(Dim::Fields, &format!("MAP_FIXED mapped at {at:#x}"));
                }
                let Some(h) = target.filter(|_| judged && certain_target) else {
                    // Unexpected, or a handle we do not know: let it go.
                    // SAFETY: our own new mapping.
                    unsafe { libc::munmap(at as *mut libc::c_void, len) };
                    return;
                };
                self.m.maps.push(MapM {
                    addr: at,
                    len,
                    file: f.id,
                    a: h.a,
                    first: (offset - h.offset) / PAGE,
                    prot,
                    maywrite: prot & libc::PROT_WRITE != 0,
                    in_region: placed.is_some(),
                    alt: f.alt,
                    fork_copy: if h.flags == crate::model::FLAGS_UNKNOWN {
                        Tri::Maybe
                    } else {
                        Tri::of(h.flags & sys::MORERAM_ALLOC_FORK_COPY != 0)
                    },
                    dontfork: false,
                });
            }
        }
    }

    // --- munmap, mremap, mprotect, madvise ------------------------------------------------

    /// Pages `[o, o + n)` of mapping `mi` are gone from the model; the rest stays, split.
    fn cut(&mut self, mi: usize, o: u64, n: u64) -> MapM {
        let m = self.m.maps.remove(mi);
        let total = m.npages();
        if o > 0 {
            let mut head = m.clone();
            head.len = (o * PAGE) as usize;
            self.m.maps.push(head);
        }
        if o + n < total {
            let mut tail = m.clone();
            tail.addr = m.addr + ((o + n) * PAGE) as usize;
            tail.first = m.first + o + n;
            tail.len = ((total - o - n) * PAGE) as usize;
            self.m.maps.push(tail);
        }
        m
    }

    /// Before a mapping of file `file` goes: if it is the file's last and the file has no
    /// descriptor left, the file is released with it, and its handles with it. Not a foreign
    /// file (the supervisor's, or a parent's): its owner keeps it open.
    fn last_of_closed_file(&self, file: u32, mi: usize, whole: bool) -> bool {
        whole
            && self
                .m
                .file(file)
                .is_some_and(|f| f.fds.is_empty() && !f.foreign)
            && !self
                .m
                .maps
                .iter()
                .enumerate()
                .any(|(i, m)| i != mi && m.file == file)
    }

    pub fn op_munmap(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let m = self.m.maps[mi].clone();
        let n = m.npages();
        let (o, k) = match self.rng.weighted(&[55, 15, 15, 15]) {
            0 => (0, n),
            1 => (0, self.rng.range(1, n)),
            2 => {
                let k = self.rng.range(1, n);
                (n - k, k)
            }
            _ => {
                let o = self.rng.below(n);
                (o, self.rng.range(1, n - o))
            }
        };
        let overlay = m.in_region && self.rng.pct(70);
        let releases = self.last_of_closed_file(m.file, mi, o == 0 && k == n);
        if releases {
            self.release_file_begin(m.file);
        }
        let addr = m.addr + (o * PAGE) as usize;
        let len = (k * PAGE) as usize;
        self.what(format!(
            "munmap {addr:#x} len {len:#x} of {:#x}+{:#x} overlay {overlay}",
            m.addr, m.len
        ));
        let ok = if overlay {
            Region::overlay(addr, len)
        } else {
            // SAFETY: part of our own mapping.
            unsafe { libc::munmap(addr as *mut libc::c_void, len) == 0 }
        };
        let code = if ok { OK } else { errno() as usize };
        self.ctx.judge(Op::Munmap, code, Codes::of(&[OK]));
        if !ok {
            return;
        }
        let gone = self.cut(mi, o, k);
        if releases {
            self.release_file_end(m.file);
        }
        if overlay {
            // Nothing is mapped there now: any access faults.
            let mut w = [0u64; 1];
            let out = probe::load(&mut w, addr as *const u64);
            self.what(format!("read of unmapped {addr:#x}"));
            self.ctx.judge_in(
                Dim::Fault,
                Op::Munmap,
                outcome_code(out),
                Codes::of(&[SEGV]),
            );
            self.m.region.give(addr, len);
        }
        self.drop_ref(gone.a);
    }

    pub fn op_mremap(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let m = self.m.maps[mi].clone();
        let n = m.npages();
        let kind = self.rng.weighted(&[30, 25, 35, 10]);
        let mut target = None;
        let (new_len, flags, exp) = match kind {
            0 if n > 1 => {
                let k = self.rng.range(1, n - 1);
                ((k * PAGE) as usize, 0, Codes::of(&[OK]))
            }
            1 => (
                m.len + (self.rng.range(1, 4) * PAGE) as usize,
                if self.rng.one_in(2) {
                    libc::MREMAP_MAYMOVE
                } else {
                    0
                },
                Codes::of(&[libc::EFAULT as usize]),
            ),
            2 if m.in_region => {
                target = self.m.region.take(m.len, self.rng.u64());
                if target.is_none() {
                    return;
                }
                (
                    m.len,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    Codes::of(&[OK]),
                )
            }
            3 => (
                m.len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_DONTUNMAP,
                Codes::of(&[libc::EINVAL as usize, libc::EFAULT as usize]),
            ),
            _ => return,
        };
        self.what(format!(
            "mremap {:#x} len {:#x} -> {new_len:#x} flags {flags:#x} to {target:?}",
            m.addr, m.len
        ));
        // SAFETY: our own mapping; the target, if any, is reserved by us.
        let p = unsafe {
            libc::mremap(
                m.addr as *mut libc::c_void,
                m.len,
                new_len,
                flags,
                target.unwrap_or(0) as *mut libc::c_void,
            )
        };
        let r: Result<usize, i32> = if p == libc::MAP_FAILED {
            Err(errno())
        } else {
            Ok(p as usize)
        };
        self.ctx.judge(Op::Mremap, code_of(&r), exp);
        match r {
            // What mremap unmaps (the target it failed to move to, the tail it cut, the place
            // it moved from) is a hole another thread may map into at once: never used again.
            Err(_) => {}
            Ok(at) => {
                if kind == 0 {
                    self.m.maps[mi].len = new_len;
                } else if kind == 2 {
                    self.m.maps[mi].addr = at;
                    if Some(at) != target {
                        self.ctx
                            .fail(Dim::Fields, &format!("mremap moved to {at:#x}"));
                    }
                } else {
                    // Not expected: the mapping is somewhere else now; forget both.
                    // SAFETY: our own mapping.
                    unsafe { libc::munmap(at as *mut libc::c_void, new_len) };
                }
            }
        }
    }

    pub fn op_mprotect(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let m = self.m.maps[mi].clone();
        let n = m.npages();
        let (o, k) = if self.rng.pct(60) {
            (0, n)
        } else {
            let o = self.rng.below(n);
            (o, self.rng.range(1, n - o))
        };
        let prot = match self.rng.weighted(&[25, 30, 35, 5, 5]) {
            0 => libc::PROT_NONE,
            1 => libc::PROT_READ,
            2 => libc::PROT_READ | libc::PROT_WRITE,
            3 => libc::PROT_READ | libc::PROT_EXEC,
            _ => libc::PROT_WRITE,
        };
        let addr = m.addr + (o * PAGE) as usize;
        let len = (k * PAGE) as usize;
        self.what(format!(
            "mprotect {addr:#x} len {len:#x} prot {prot:#x} (maywrite {})",
            m.maywrite
        ));
        let mut exp = Exp::new();
        exp.when(libc::EACCES, prot & libc::PROT_EXEC != 0);
        exp.when(libc::EACCES, prot & libc::PROT_WRITE != 0 && !m.maywrite);
        // SAFETY: part of our own mapping.
        let r = unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) };
        let code = if r == 0 { OK } else { errno() as usize };
        if !self.ctx.judge(Op::Mprotect, code, exp.codes()) || r != 0 || prot == m.prot {
            // The same protection changes nothing: the VMA is not split.
            return;
        }
        let mut mid = self.cut(mi, o, k);
        mid.addr = addr;
        mid.first = m.first + o;
        mid.len = len;
        mid.prot = prot;
        self.m.maps.push(mid);
    }

    pub fn op_madvise(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let m = self.m.maps[mi].clone();
        let n = m.npages();
        let o = self.rng.below(n);
        let k = self.rng.range(1, n - o);
        let advice = [
            libc::MADV_DONTNEED,
            libc::MADV_WILLNEED,
            libc::MADV_NORMAL,
            libc::MADV_RANDOM,
            libc::MADV_SEQUENTIAL,
            libc::MADV_DONTFORK,
            libc::MADV_DOFORK,
            libc::MADV_DONTDUMP,
            libc::MADV_DODUMP,
            libc::MADV_COLD,
            libc::MADV_PAGEOUT,
            libc::MADV_FREE,
            libc::MADV_REMOVE,
            libc::MADV_HUGEPAGE,
            libc::MADV_NOHUGEPAGE,
            libc::MADV_WIPEONFORK,
            libc::MADV_POPULATE_READ,
            libc::MADV_POPULATE_WRITE,
        ][self.rng.below(18) as usize];
        let addr = m.addr + (o * PAGE) as usize;
        let len = (k * PAGE) as usize;
        self.what(format!("madvise {addr:#x} len {len:#x} advice {advice}"));
        // SAFETY: advice on our own mapping; none of these can hurt memory we rely on.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) };
        let code = if r == 0 { OK } else { errno() as usize };
        // The man page's errnos (the module's documentation is silent about madvise): it must
        // not lose or change a byte, whatever it answers.
        let mut allowed = Codes::of(&[
            OK,
            libc::EINVAL as usize,
            libc::EBADF as usize,
            libc::EACCES as usize,
            libc::EAGAIN as usize,
            libc::EIO as usize,
            libc::ENOMEM as usize,
            libc::EPERM as usize,
            libc::EOPNOTSUPP as usize,
            // MADV_REMOVE punches a hole: fallocate(2) says ENODEV for what is not a file.
            libc::ENODEV as usize,
        ]);
        if advice == libc::MADV_POPULATE_WRITE || advice == libc::MADV_POPULATE_READ {
            // Populating a page that may not be inserted fails the call.
            allowed.add(libc::EFAULT as usize);
        }
        self.ctx.judge(Op::Madvise, code, allowed);
        if advice == libc::MADV_DONTFORK && r == 0 {
            self.m.maps[mi].dontfork = true;
        }
        if advice == libc::MADV_POPULATE_WRITE && r == 0 {
            // It faulted every page writable: each must be writable.
            let me = self.m.me;
            if let Some(v) = view_in(&mut self.m.privs, m.a) {
                for p in o..o + k {
                    let ap = m.first + p;
                    let c = access_codes(&m, &v, ap, true, &me);
                    if !c.has(OK)
                        && !v
                            .pages()
                            .get(ap as usize)
                            .is_some_and(|r| ownerless(r) != Tri::No)
                    {
                        self.ctx.fail(
                            Dim::Fault,
                            &format!("MADV_POPULATE_WRITE succeeded on page {ap}, which may not be written"),
                        );
                    }
                }
            }
        }
        // Nothing may have changed.
        for p in o..(o + k).min(o + 2) {
            self.verify_page(mi, p, Op::Madvise);
        }
    }

    // --- memory ----------------------------------------------------------------------------

    pub fn op_write(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let n = self.m.maps[mi].npages();
        let k0 = self.rng.below(n);
        let cnt = self.rng.range(1, (n - k0).min(4));
        for k in k0..k0 + cnt {
            self.write_page(mi, k);
        }
    }

    /// Writes page `k` of mapping `mi` with this process's next pattern, and judges whether it
    /// had to fault.
    pub fn write_page(&mut self, mi: usize, k: u64) {
        let mm = self.m.maps[mi].clone();
        let me = self.m.me;
        let ap = mm.first + k;
        let addr = mm.addr + (k * PAGE) as usize;
        self.what(format!(
            "write page {ap} at {addr:#x} (mapping {:#x}+{:#x} prot {:#x}{})",
            mm.addr,
            mm.len,
            mm.prot,
            if mm.alt { ", second node" } else { "" }
        ));
        let Some(mut v) = view_in(&mut self.m.privs, mm.a) else {
            return;
        };
        let uid = v.meta().uid_or(mm.a.uid);
        let before = access_codes(&mm, &v, ap, true, &me);
        let rec = v.pages()[ap as usize];
        let gen = rec.gen + 1;
        let mut buf = [0u64; WORDS];
        pattern::fill(&mut buf, uid, ap, me.inst, gen);
        let out = probe::store(addr as *mut u64, &buf);
        fence(SeqCst);
        let after = access_codes(&mm, &v, ap, true, &me);
        let allowed = before.union(after);
        let code = outcome_code(out);
        if allowed.has(code) {
            self.ctx.judge_in(Dim::Fault, Op::Write, code, allowed);
        } else if code == OK && ownerless(&rec) != Tri::No && !allowed.has(OK) {
            self.ctx.count_only(Op::Write, code);
            self.ctx.defect(
                d::OWNERLESS_WRITE,
                Dim::Fault,
                &format!(
                    "write to ownerless page {ap} (owner {:?}) succeeded",
                    rec.owner()
                ),
            );
        } else if code == OK && mm.alt {
            self.ctx.count_only(Op::Write, code);
            self.ctx.defect(
                d::SECOND_NODE,
                Dim::Fault,
                &format!(
                    "write through a second node's mapping succeeded, allowed {}",
                    allowed.names()
                ),
            );
        } else {
            if code == SEGV {
                let w = where_is(addr, &self.m.maps);
                self.ctx.what.push_str(&format!(" [{w}]"));
            }
            let owner = rec.owner();
            let w = format!(
                "owner {owner:?} ({}) writers {:?} me {} unbound {:?}",
                match owner {
                    Who::Inst(i) => board().state(i),
                    _ => 0,
                },
                rec.writers().collect::<Vec<_>>(),
                me.inst,
                unbound(v.meta())
            );
            self.ctx.what.push_str(&format!(" [{w}]"));
            self.ctx.judge_in(Dim::Fault, Op::Write, code, allowed);
        }
        let r = &mut v.pages_mut()[ap as usize];
        if code == OK || partial(out) {
            r.last_writer = me.inst;
            r.gen = gen;
            r.torn = u32::from(code != OK);
        }
    }

    pub fn op_verify(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let n = self.m.maps[mi].npages();
        let k0 = self.rng.below(n);
        let cnt = self.rng.range(1, (n - k0).min(4));
        for k in k0..k0 + cnt {
            self.verify_page(mi, k, Op::Verify);
        }
    }

    /// Reads page `k` of mapping `mi` and checks it against the model.
    pub fn verify_page(&mut self, mi: usize, k: u64, op: Op) {
        let mm = self.m.maps[mi].clone();
        let me = self.m.me;
        let ap = mm.first + k;
        let addr = mm.addr + (k * PAGE) as usize;
        self.what(format!(
            "read page {ap} at {addr:#x} (mapping {:#x}+{:#x} prot {:#x})",
            mm.addr, mm.len, mm.prot
        ));
        let Some(v) = view_in(&mut self.m.privs, mm.a) else {
            return;
        };
        let uid = v.meta().uid_or(mm.a.uid);
        let allowed = access_codes(&mm, &v, ap, false, &me);
        let mut buf = [0u64; WORDS];
        let out = probe::load(&mut buf, addr as *const u64);
        let code = outcome_code(out);
        let allowed = allowed.union(access_codes(&mm, &v, ap, false, &me));
        if !allowed.has(code) && code == SEGV {
            let w = where_is(addr, &self.m.maps);
            self.ctx.what.push_str(&format!(" [{w}]"));
        }
        self.ctx.judge_in(Dim::Fault, op, code, allowed);
        if code != OK {
            return;
        }
        let r = v.pages()[ap as usize];
        let e = expect_of(&r, v.meta().tainted != 0);
        let dim = if e == Expect::Zero {
            Dim::Zero
        } else {
            Dim::Data
        };
        match pattern::check(&buf, uid, ap, e) {
            None => self.ctx.checked(dim),
            Some((i, w)) => {
                let exposed = w != 0 && (w >> 32) as u32 != pattern::tag(uid, ap, i);
                self.ctx.fail(
                    dim,
                    &format!(
                        "page {ap} word {i}: {w:#018x}, expected {e:?} ({}; owner {:?})",
                        if exposed {
                            "bytes of another allocation or page: exposed"
                        } else if w == 0 {
                            "zero: lost"
                        } else {
                            "another write: lost or misdirected"
                        },
                        r.owner()
                    ),
                );
            }
        }
    }

    /// A read without the allocation's lock: others may be writing; each word must belong here.
    pub fn op_racy_read(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let mm = self.m.maps[mi].clone();
        let me = self.m.me;
        let k = self.rng.below(mm.npages());
        let ap = mm.first + k;
        let addr = mm.addr + (k * PAGE) as usize;
        self.what(format!("unlocked read page {ap} at {addr:#x}"));
        let (allowed, uid) = match view_in(&mut self.m.privs, mm.a) {
            Some(v) => (
                access_codes(&mm, &v, ap, false, &me),
                v.meta().uid_or(mm.a.uid),
            ),
            None => return,
        };
        let mut buf = [0u64; WORDS];
        let out = probe::load(&mut buf, addr as *const u64);
        let allowed = allowed.with(BUS).union(if allowed.has(SEGV) {
            Codes::none()
        } else {
            Codes::of(&[OK])
        });
        let code = outcome_code(out);
        self.ctx.judge_in(Dim::Fault, Op::RacyRead, code, allowed);
        if code == OK {
            self.ctx.checked(Dim::Data);
            if let Some((i, w)) = pattern::check(&buf, uid, ap, Expect::AnyOwn) {
                self.ctx.fail(
                    Dim::Data,
                    &format!("page {ap} word {i}: {w:#018x} belongs to another allocation or page"),
                );
            }
        }
    }

    /// Reads (and writes) a mapped page through /proc/self/mem and process_vm_readv: the
    /// kernel's remote access must not see more than the mapping allows.
    pub fn op_procmem(&mut self) {
        if !self.parent_maps.is_empty() && self.rng.one_in(2) {
            return self.parent_mem();
        }
        let Some(mi) = self.pick_map() else { return };
        let mm = self.m.maps[mi].clone();
        let me = self.m.me;
        let k = self.rng.below(mm.npages());
        let ap = mm.first + k;
        let addr = mm.addr + (k * PAGE) as usize;
        let Some(mut v) = view_in(&mut self.m.privs, mm.a) else {
            return;
        };
        let uid = v.meta().uid_or(mm.a.uid);
        let mut buf = [0u64; WORDS];
        let which = self.rng.below(3);
        let (op, r) = match which {
            0 | 2 => {
                let write = which == 2;
                self.ctx.what = format!(
                    "/proc/self/mem {} page {ap} at {addr:#x}",
                    if write { "pwrite" } else { "pread" }
                );
                let f = match std::fs::OpenOptions::new()
                    .read(true)
                    .write(write)
                    .open("/proc/self/mem")
                {
                    Ok(f) => f,
                    Err(_) => return,
                };
                use std::os::fd::AsRawFd;
                if write {
                    pattern::fill(&mut buf, uid, ap, me.inst, v.pages()[ap as usize].gen + 1);
                }
                // SAFETY: reads or writes `buf`, PAGE bytes.
                let n = unsafe {
                    if write {
                        libc::pwrite(
                            f.as_raw_fd(),
                            buf.as_ptr().cast(),
                            PAGE as usize,
                            addr as i64,
                        )
                    } else {
                        libc::pread(
                            f.as_raw_fd(),
                            buf.as_mut_ptr().cast(),
                            PAGE as usize,
                            addr as i64,
                        )
                    }
                };
                (
                    Op::ProcMem,
                    if n == PAGE as isize {
                        Ok(())
                    } else if n < 0 {
                        Err(errno())
                    } else {
                        Err(libc::EIO)
                    },
                )
            }
            _ => {
                self.ctx.what = format!("process_vm_readv page {ap} at {addr:#x}");
                let local = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: PAGE as usize,
                };
                let remote = libc::iovec {
                    iov_base: addr as *mut libc::c_void,
                    iov_len: PAGE as usize,
                };
                // SAFETY: reads from our own process into `buf`.
                let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
                (
                    Op::VmReadv,
                    if n == PAGE as isize {
                        Ok(())
                    } else if n < 0 {
                        Err(errno())
                    } else {
                        Err(libc::EFAULT)
                    },
                )
            }
        };
        let code = code_of(&r);
        let write = which == 2;
        // process_vm_readv needs CONFIG_CROSS_MEMORY_ATTACH.
        let mut allowed = Codes::of(&[
            libc::EIO as usize,
            libc::EFAULT as usize,
            libc::ENOSYS as usize,
        ]);
        let may = access_codes(&mm, &v, ap, write, &me);
        if may.has(OK) {
            allowed.add(OK);
        }
        self.ctx.judge_in(
            if write { Dim::Fault } else { Dim::Errno },
            op,
            code,
            allowed,
        );
        if r.is_ok() {
            if write {
                let rec = &mut v.pages_mut()[ap as usize];
                rec.last_writer = me.inst;
                rec.gen += 1;
                if !may.has(OK) {
                    // Already failed above.
                } else if may.has(BUS) {
                    rec.torn = 1;
                }
            } else {
                self.ctx.checked(Dim::Data);
                let e = expect_of(&v.pages()[ap as usize], v.meta().tainted != 0);
                if let Some((i, w)) = pattern::check(&buf, uid, ap, e) {
                    self.ctx.fail(
                        Dim::Data,
                        &format!("remote read of page {ap} word {i}: {w:#018x}, expected {e:?}"),
                    );
                }
            }
        }
    }

    /// A forked child reads its parent's mapping through /proc/PPID/mem: never more than the
    /// parent could read; a PFN mapping gives nothing to remote access.
    fn parent_mem(&mut self) {
        let k = self.rng.below(self.parent_maps.len() as u64) as usize;
        let mm = self.parent_maps[k].clone();
        // SAFETY: no preconditions.
        let ppid = unsafe { libc::getppid() };
        self.ctx.what = format!(
            "read /proc/{ppid}/mem at the parent's mapping {:#x}",
            mm.addr
        );
        let mut buf = [0u64; WORDS];
        let r = match std::fs::File::open(format!("/proc/{ppid}/mem")) {
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
            Ok(f) => {
                use std::os::fd::AsRawFd;
                // SAFETY: reads PAGE bytes into `buf`.
                let n = unsafe {
                    libc::pread(
                        f.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        PAGE as usize,
                        mm.addr as i64,
                    )
                };
                if n == PAGE as isize {
                    Ok(())
                } else if n < 0 {
                    Err(errno())
                } else {
                    Err(libc::EIO)
                }
            }
        };
        let allowed = Codes::of(&[
            OK,
            libc::EIO as usize,
            libc::EFAULT as usize,
            libc::EPERM as usize,
            libc::EACCES as usize,
        ]);
        self.ctx.judge(Op::ProcMem, code_of(&r), allowed);
        if r.is_ok() {
            let uid = match view_in(&mut self.m.privs, mm.a) {
                Some(v) => v.meta().uid_or(mm.a.uid),
                None => return,
            };
            self.ctx.checked(Dim::Data);
            if let Some((i, w)) = pattern::check(&buf, uid, mm.first, Expect::AnyOwn) {
                self.ctx.fail(
                    Dim::Data,
                    &format!(
                        "the parent's page {} read through /proc: word {i} is {w:#018x}",
                        mm.first
                    ),
                );
            }
        }
    }

    // --- races between threads ------------------------------------------------------------

    pub fn op_race(&mut self) {
        match self.rng.below(4) {
            0 => self.race_give_write(),
            1 => self.race_unmap_read(),
            2 => self.race_mprotect_write(),
            _ => self.race_alloc_free(),
        }
    }

    /// A thread writes a page this process owns while the main thread gives it away: once GIVE
    /// has returned, no write may succeed.
    fn race_give_write(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let mm = self.m.maps[mi].clone();
        if mm.prot & libc::PROT_WRITE == 0 {
            return;
        }
        let me = self.m.me;
        let k = self.rng.below(mm.npages());
        let ap = mm.first + k;
        let addr = mm.addr + (k * PAGE) as usize;
        let Some(fi) = self
            .m
            .files
            .iter()
            .position(|f| f.id == mm.file && !f.fds.is_empty())
        else {
            return;
        };
        let Some(h) = self.m.files[fi]
            .handles
            .iter()
            .find(|h| h.a == mm.a && h.holder == me.inst)
            .cloned()
        else {
            return;
        };
        let fd = self.m.files[fi].fds[0];
        let (pid, who, alive) = self.pick_target();
        if alive != Tri::Yes || pid <= 0 || pid == me.pid {
            return;
        }
        let Some(mut v) = view_in(&mut self.m.privs, mm.a) else {
            return;
        };
        let uid = v.meta().uid_or(mm.a.uid);
        let rec = v.pages()[ap as usize];
        if owns(&rec, &me) != Tri::Yes || rec.nwriters != 0 || unbound(v.meta()) != Tri::No {
            return;
        }
        self.ctx.what = format!("race: write page {ap} at {addr:#x} while GIVE to pid {pid}");
        let given = AtomicBool::new(false);
        let late_ok = AtomicBool::new(false);
        let last_ok = AtomicU32::new(0);
        let torn = AtomicBool::new(false);
        let bad_sig = AtomicU32::new(0);
        let g0 = rec.gen + 1;
        let mut req = sys::moreram_control {
            handle: h.h,
            cmd: sys::MORERAM_CTL_GIVE,
            offset: ap * PAGE,
            length: PAGE,
            pid,
            ..Default::default()
        };
        let delay = self.rng.below(3000);
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                let mut buf = [0u64; WORDS];
                for i in 0..600u32 {
                    let after = given.load(SeqCst);
                    pattern::fill(&mut buf, uid, ap, me.inst, g0 + i);
                    let out = probe::store(addr as *mut u64, &buf);
                    match out {
                        Outcome::Ok => {
                            last_ok.store(g0 + i, SeqCst);
                            torn.store(false, SeqCst);
                            if after {
                                late_ok.store(true, SeqCst);
                                break;
                            }
                        }
                        Outcome::Bus(n) => {
                            if n > 0 {
                                last_ok.store(g0 + i, SeqCst);
                                torn.store(true, SeqCst);
                            }
                            break;
                        }
                        Outcome::Segv(_) => {
                            bad_sig.store(SEGV as u32, SeqCst);
                            break;
                        }
                    }
                }
                fence(SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_micros(delay));
            let r = ioctl(fd, sys::MORERAM_IOC_CONTROL, &mut req);
            given.store(true, SeqCst);
            r
        });
        let code = code_of(&r);
        let consent = match who {
            Who::Inst(i) => v.meta().holds_handle(i),
            _ => Some(false),
        };
        let mut allowed = Codes::of(&[OK]);
        if consent != Some(true) {
            // Giving needs the receiver's consent: a handle (issue 10 item 4).
            allowed.add(libc::EACCES as usize);
        }
        if let Who::Inst(i) = who {
            if board().state(i) != crate::board::ALIVE {
                allowed.add(libc::ESRCH as usize);
            }
        }
        self.ctx.judge(Op::Race, code, allowed);
        let g = last_ok.load(SeqCst);
        let p = &mut v.pages_mut()[ap as usize];
        if g != 0 {
            p.last_writer = me.inst;
            p.gen = g;
            p.torn = u32::from(torn.load(SeqCst));
        }
        if r.is_ok() {
            p.owner = match who {
                Who::Inst(i) => Who::Inst(i),
                w => w,
            }
            .encode();
            p.clear_writers();
            v.meta_mut().add_reader(who);
            v.meta_mut().race_flag += 1;
            if consent == Some(false) {
                self.ctx.defect(
                    d::GIVE_ANYONE,
                    Dim::Errno,
                    "GIVE (race) to a process without a handle",
                );
            }
            self.ctx.checked(Dim::Fault);
            if late_ok.load(SeqCst) {
                self.ctx
                    .fail(Dim::Fault, "a write after GIVE returned succeeded");
            }
        }
        if bad_sig.load(SeqCst) != 0 {
            self.ctx
                .fail(Dim::Fault, "SIGSEGV writing a writable mapping during GIVE");
        }
        drop(v);
        let _ = mi;
    }

    /// A thread reads a mapping while the main thread unmaps it: once munmap has returned, every
    /// read faults.
    fn race_unmap_read(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let mm = self.m.maps[mi].clone();
        if !mm.in_region
            || mm.prot & libc::PROT_READ == 0
            || self.last_of_closed_file(mm.file, mi, true)
        {
            return;
        }
        let uid = match view_in(&mut self.m.privs, mm.a) {
            Some(v) => {
                if unbound(v.meta()) != Tri::No {
                    return;
                }
                v.meta().uid_or(mm.a.uid)
            }
            None => return,
        };
        self.ctx.what = format!(
            "race: read {:#x}+{:#x} while it is unmapped",
            mm.addr, mm.len
        );
        let gone = AtomicBool::new(false);
        let bad = AtomicU64::new(0);
        let n = mm.npages();
        let delay = self.rng.below(2000);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut buf = [0u64; WORDS];
                for i in 0..400u64 {
                    let after = gone.load(SeqCst);
                    let k = i % n;
                    let out = probe::load(&mut buf, (mm.addr + (k * PAGE) as usize) as *const u64);
                    match out {
                        Outcome::Ok => {
                            if after {
                                bad.store(1, SeqCst);
                                break;
                            }
                            if pattern::check(&buf, uid, mm.first + k, Expect::AnyOwn).is_some() {
                                bad.store(2, SeqCst);
                                break;
                            }
                        }
                        Outcome::Segv(_) => {
                            if after {
                                break;
                            }
                        }
                        Outcome::Bus(_) => {
                            bad.store(3, SeqCst);
                            break;
                        }
                    }
                }
            });
            std::thread::sleep(std::time::Duration::from_micros(delay));
            Region::overlay(mm.addr, mm.len);
            gone.store(true, SeqCst);
        });
        self.ctx.count_only(Op::Race, OK);
        self.ctx.checked(Dim::Fault);
        match bad.load(SeqCst) {
            1 => self
                .ctx
                .fail(Dim::Fault, "a read after munmap returned succeeded"),
            2 => self.ctx.fail(
                Dim::Data,
                "a read during munmap saw bytes of another allocation",
            ),
            3 => self
                .ctx
                .fail(Dim::Fault, "SIGBUS reading a mapping being unmapped"),
            _ => {}
        }
        let gone = self.cut(mi, 0, n);
        self.m.region.give(mm.addr, mm.len);
        self.drop_ref(gone.a);
    }

    /// A thread writes a page while the main thread flips the mapping between read-only and
    /// read-write: writes fault with SIGSEGV while read-only, never SIGBUS.
    fn race_mprotect_write(&mut self) {
        let Some(mi) = self.pick_map() else { return };
        let mm = self.m.maps[mi].clone();
        if !mm.maywrite || mm.prot != libc::PROT_READ | libc::PROT_WRITE {
            return;
        }
        let me = self.m.me;
        let k = self.rng.below(mm.npages());
        let ap = mm.first + k;
        let addr = mm.addr + (k * PAGE) as usize;
        let Some(mut v) = view_in(&mut self.m.privs, mm.a) else {
            return;
        };
        let uid = v.meta().uid_or(mm.a.uid);
        let rec = v.pages()[ap as usize];
        if may_write(&rec, &me) != Tri::Yes
            || unbound(v.meta()) != Tri::No
            || holds(rec.owner()) != Tri::Yes
        {
            return;
        }
        self.ctx.what = format!("race: write page {ap} at {addr:#x} while mprotect flips");
        let stop = AtomicBool::new(false);
        let last_ok = AtomicU32::new(0);
        let torn = AtomicBool::new(false);
        let bus = AtomicBool::new(false);
        let g0 = rec.gen + 1;
        let flips = self.rng.range(2, 10);
        let mut bad_mprotect = false;
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut buf = [0u64; WORDS];
                let mut i = 0;
                while !stop.load(SeqCst) && i < 400 {
                    pattern::fill(&mut buf, uid, ap, me.inst, g0 + i);
                    match probe::store(addr as *mut u64, &buf) {
                        Outcome::Ok => {
                            last_ok.store(g0 + i, SeqCst);
                            torn.store(false, SeqCst);
                        }
                        Outcome::Segv(n) => {
                            if n > 0 {
                                last_ok.store(g0 + i, SeqCst);
                                torn.store(true, SeqCst);
                            }
                        }
                        Outcome::Bus(_) => {
                            bus.store(true, SeqCst);
                            break;
                        }
                    }
                    i += 1;
                }
            });
            for j in 0..flips {
                let prot = if j % 2 == 0 {
                    libc::PROT_READ
                } else {
                    libc::PROT_READ | libc::PROT_WRITE
                };
                // SAFETY: our own mapping.
                if unsafe { libc::mprotect(mm.addr as *mut libc::c_void, mm.len, prot) } != 0 {
                    bad_mprotect = true;
                }
                std::thread::yield_now();
            }
            // SAFETY: our own mapping, back as it was.
            if unsafe { libc::mprotect(mm.addr as *mut libc::c_void, mm.len, mm.prot) } != 0 {
                bad_mprotect = true;
            }
            stop.store(true, SeqCst);
        });
        self.ctx.count_only(Op::Race, OK);
        self.ctx.checked(Dim::Fault);
        if bad_mprotect {
            self.ctx
                .fail(Dim::Errno, "mprotect of a writable mapping failed");
        }
        if bus.load(SeqCst) {
            self.ctx
                .fail(Dim::Fault, "SIGBUS writing a page this process may write");
        }
        let g = last_ok.load(SeqCst);
        let p = &mut v.pages_mut()[ap as usize];
        if g != 0 {
            p.last_writer = me.inst;
            p.gen = g;
            p.torn = u32::from(torn.load(SeqCst));
        }
    }

    /// Two threads allocate and free through the same file at once: handles never collide.
    fn race_alloc_free(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        if self.m.files[fi].crowded {
            return;
        }
        let fd = self.fd_of(fi);
        let n = self.rng.range(4, 16) as usize;
        self.ctx.what = format!("race: {n} ALLOC+FREE in each of two threads on fd {fd}");
        let run = || {
            let mut got = Vec::new();
            let mut errs = Vec::new();
            for i in 0..n {
                let mut req = sys::moreram_alloc {
                    size: PAGE,
                    flags: if i % 2 == 0 {
                        sys::MORERAM_ALLOC_SYSTEM_ONLY
                    } else {
                        0
                    },
                    ..Default::default()
                };
                match ioctl(fd, sys::MORERAM_IOC_ALLOC, &mut req) {
                    Ok(()) => got.push(req.handle),
                    Err(e) => errs.push(e),
                }
            }
            for &h in &got {
                let req = sys::moreram_handle {
                    handle: h,
                    ..Default::default()
                };
                if let Err(e) = ioctl(
                    fd,
                    sys::MORERAM_IOC_FREE,
                    std::ptr::from_ref(&req).cast_mut(),
                ) {
                    errs.push(e + 1000);
                }
            }
            (got, errs)
        };
        let (a, b) = std::thread::scope(|s| {
            let t = s.spawn(run);
            let a = run();
            (a, t.join().unwrap_or_default())
        });
        let max = self.m.files[fi].max_handle;
        let mut all: Vec<u32> = a.0.iter().chain(b.0.iter()).copied().collect();
        all.sort_unstable();
        let unique = all.windows(2).all(|w| w[0] != w[1]);
        let injecting = board().failing.load(Relaxed) != 0;
        for e in a.1.iter().chain(b.1.iter()) {
            let c = if *e >= 1000 {
                (e - 1000) as usize
            } else {
                *e as usize
            };
            let ok = *e < 1000 && c == libc::ENOMEM as usize && injecting;
            self.ctx.judge(
                Op::Race,
                c,
                if ok {
                    Codes::of(&[libc::ENOMEM as usize])
                } else {
                    Codes::of(&[OK])
                },
            );
        }
        self.ctx.count_only(Op::Race, OK);
        self.ctx.checked(Dim::Fields);
        if !unique || all.first().is_some_and(|&h| h <= max) {
            self.ctx.fail(
                Dim::Fields,
                &format!("handles from two threads: {all:?} (max before {max})"),
            );
        }
        if let Some(&m) = all.last() {
            let f = &mut self.m.files[fi];
            f.max_handle = f.max_handle.max(m);
        }
    }
}

/// The allocation id a view's pattern uses.
pub trait UidOr {
    fn uid_or(&self, uid: u64) -> u64;
}

impl UidOr for crate::board::Meta {
    fn uid_or(&self, uid: u64) -> u64 {
        if self.uid != 0 {
            self.uid
        } else {
            uid
        }
    }
}
