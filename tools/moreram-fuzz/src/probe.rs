//! Guarded memory probes: copy words to or from memory that may fault, and learn which signal
//! the access raised instead of dying of it.
//!
//! The copy loops are written in assembly so that the faulting instruction is known: the
//! `SIGSEGV`/`SIGBUS` handler recognises it by the saved instruction pointer, stores the signal
//! number in `r8` and resumes at the loop's exit, which returns the number of words copied with
//! the signal in the top byte. A fault anywhere else is a real crash: the handler puts the default
//! action back and returns, so the access faults again and the process dies of it (the
//! supervisor reports that).

use std::arch::global_asm;

global_asm!(
    // u64 fz_copy_out(u64 *dst, const u64 *src, usize n): dst is the probed memory.
    ".globl fz_copy_out",
    ".globl fz_copy_out_insn",
    ".globl fz_copy_out_fault",
    "fz_copy_out:",
    "    xor eax, eax",
    "2:  cmp rax, rdx",
    "    jae 3f",
    "    mov rcx, [rsi + rax*8]",
    "fz_copy_out_insn:",
    "    mov [rdi + rax*8], rcx",
    "    inc rax",
    "    jmp 2b",
    "3:  ret",
    "fz_copy_out_fault:",
    "    shl r8, 56",
    "    or rax, r8",
    "    ret",
    // u64 fz_copy_in(u64 *dst, const u64 *src, usize n): src is the probed memory.
    ".globl fz_copy_in",
    ".globl fz_copy_in_insn",
    ".globl fz_copy_in_fault",
    "fz_copy_in:",
    "    xor eax, eax",
    "2:  cmp rax, rdx",
    "    jae 3f",
    "fz_copy_in_insn:",
    "    mov rcx, [rsi + rax*8]",
    "    mov [rdi + rax*8], rcx",
    "    inc rax",
    "    jmp 2b",
    "3:  ret",
    "fz_copy_in_fault:",
    "    shl r8, 56",
    "    or rax, r8",
    "    ret",
);

extern "C" {
    fn fz_copy_out(dst: *mut u64, src: *const u64, n: usize) -> u64;
    fn fz_copy_in(dst: *mut u64, src: *const u64, n: usize) -> u64;
    static fz_copy_out_insn: u8;
    static fz_copy_out_fault: u8;
    static fz_copy_in_insn: u8;
    static fz_copy_in_fault: u8;
}

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every word was copied.
    Ok,
    /// `SIGSEGV` after this many words.
    Segv(usize),
    /// `SIGBUS` after this many words.
    Bus(usize),
}

impl Outcome {
    fn from_raw(r: u64) -> Outcome {
        let sig = (r >> 56) as i32;
        let done = (r & ((1 << 56) - 1)) as usize;
        match sig {
            0 => Outcome::Ok,
            libc::SIGSEGV => Outcome::Segv(done),
            _ => Outcome::Bus(done),
        }
    }
}

/// Writes `src` to the words at `dst`, which may fault.
pub fn store(dst: *mut u64, src: &[u64]) -> Outcome {
    // SAFETY: `src` is valid for `src.len()` reads; `dst` may be anything: a fault is caught by
    // the handler (see `install`), which resumes the function at its exit.
    Outcome::from_raw(unsafe { fz_copy_out(dst, src.as_ptr(), src.len()) })
}

/// Reads the words at `src`, which may fault, into `dst`.
pub fn load(dst: &mut [u64], src: *const u64) -> Outcome {
    // SAFETY: as for `store`, with the roles swapped; `dst` is valid for writes.
    Outcome::from_raw(unsafe { fz_copy_in(dst.as_mut_ptr(), src, dst.len()) })
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes the interrupted context of this thread; the addresses are those
    // of the labels above.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let rip = &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize];
        let out_insn = std::ptr::addr_of!(fz_copy_out_insn) as i64;
        let in_insn = std::ptr::addr_of!(fz_copy_in_insn) as i64;
        let resume = if *rip == out_insn {
            std::ptr::addr_of!(fz_copy_out_fault) as i64
        } else if *rip == in_insn {
            std::ptr::addr_of!(fz_copy_in_fault) as i64
        } else {
            // A real crash: say where on the board, and fault again with the default action.
            use std::sync::atomic::Ordering::Relaxed;
            let c = &crate::board::board().crash;
            c[0].store(libc::getpid() as u64, Relaxed);
            c[1].store(sig as u64, Relaxed);
            c[2].store((*info).si_code as u64, Relaxed);
            c[3].store((*info).si_addr() as u64, Relaxed);
            c[4].store(
                (*rip).wrapping_sub(fz_copy_out as *const () as i64) as u64,
                Relaxed,
            );
            // A signal another process or the kernel sent, not a fault: recorded, then ignored.
            let code = (*info).si_code;
            if code <= 0 || code == libc::SI_KERNEL {
                c[1].store(1000 + sig as u64, Relaxed);
                return;
            }
            libc::signal(sig, libc::SIG_DFL);
            return;
        };
        (*uc).uc_mcontext.gregs[libc::REG_R8 as usize] = i64::from(sig);
        *rip = resume;
    }
}

/// Installs the handler for `SIGSEGV` and `SIGBUS`, for every thread of the process.
pub fn install() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a plain sigaction with a handler that only touches the interrupted context.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
