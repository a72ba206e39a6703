//! Tests of what users and admins see: DRM fdinfo, sysfs, and the `moreram` CLI.

use crate::{
    check,
    owners::{spawn, Child},
    Test, TestResult,
};
use moreram::{Control, Moreram, Placement};
use std::{
    collections::BTreeMap,
    io::{self, BufRead, BufReader},
    os::fd::{AsFd, AsRawFd},
    process::{Command, Stdio},
};

const MIB: u64 = 1 << 20;

/// The tests of this file.
pub const TESTS: &[Test] = &[
    Test::new("fdinfo", &["observe"], |_| fdinfo()),
    Test::new("drm-fdinfo", &["observe"], |_| drm_fdinfo()),
    Test::new("sysfs-numbers", &["observe"], |_| sysfs_numbers()),
    Test::new("cli-stat-json", &["observe"], |_| cli_stat_json()),
    Test::new("debugfs-numbers", &["observe"], |_| debugfs_numbers()),
    Test::new("memdebug-poison", &["observe"], |_| memdebug_poison()),
    Test::new("memdebug-leak", &["observe"], |_| memdebug_leak()),
    Test::new("fault-injection", &["observe"], |_| fault_injection()),
    Test::new("release-failure-retires", &["observe"], |_| {
        release_failure_retires()
    }),
];

fn e(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

fn bochs(mr: &Moreram) -> Result<moreram::Bank, String> {
    mr.banks()
        .map_err(e("BANKS"))?
        .into_iter()
        .find(|b| b.vendor == 0x1234)
        .ok_or_else(|| "no bochs bank".to_string())
}

/// The DRM keys of a file's fdinfo, checked against the format of
/// Documentation/gpu/drm-usage-stats.rst; memory values in KiB.
fn drm_keys(mr: &Moreram) -> Result<BTreeMap<String, String>, String> {
    drm_keys_of(mr.as_fd().as_raw_fd())
}

fn drm_keys_of(fd: i32) -> Result<BTreeMap<String, String>, String> {
    let path = format!("/proc/self/fdinfo/{fd}");
    let text = std::fs::read_to_string(&path).map_err(|er| format!("{path}: {er}"))?;
    let mut keys = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("drm-")) {
        let (k, v) = line.split_once(':').ok_or(format!("no colon: {line:?}"))?;
        let v = v.trim_start_matches([' ', '\t']);
        check!(
            !k.is_empty()
                && k.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "key {k:?} is not a DRM key"
        );
        let memory = ["drm-total-", "drm-shared-", "drm-resident-"]
            .iter()
            .any(|p| k.starts_with(p));
        if memory {
            let (n, unit) = v.split_once(' ').unwrap_or((v, ""));
            check!(
                n.parse::<u64>().is_ok() && ["", "KiB", "MiB"].contains(&unit),
                "{k}: {v:?} is not <uint> [KiB|MiB]"
            );
            let kib = n.parse::<u64>().unwrap_or(0)
                * if unit == "MiB" {
                    1024
                } else if unit.is_empty() {
                    0
                } else {
                    1
                };
            keys.insert(k.to_string(), kib.to_string());
        } else {
            keys.insert(k.to_string(), v.to_string());
        }
    }
    Ok(keys)
}

/// fdinfo has the DRM usage-stats keys, one region per bank plus `system`, with what this file
/// allocated; memory shared with another process shows as shared.
fn fdinfo() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let bo = bochs(&mr)?;
    let region = format!("vram{}", bo.index);
    let a = mr
        .alloc(MIB, Placement::Bank(bo.index), false)
        .map_err(e("ALLOC"))?;
    let _s = mr
        .alloc(256 << 10, Placement::SystemOnly, false)
        .map_err(e("ALLOC system"))?;
    let k = drm_keys(&mr)?;
    let get = |k: &BTreeMap<String, String>, key: &str| k.get(key).cloned().unwrap_or_default();
    check!(
        get(&k, "drm-driver") == "moreram",
        "drm-driver: {:?}",
        get(&k, "drm-driver")
    );
    check!(
        get(&k, "drm-client-id").parse::<u64>().is_ok(),
        "drm-client-id: {:?}",
        get(&k, "drm-client-id")
    );
    check!(
        get(&k, &format!("drm-total-{region}")) == "1024",
        "total {region}: {k:?}"
    );
    check!(
        get(&k, &format!("drm-resident-{region}")) == "1024",
        "resident {region}: {k:?}"
    );
    check!(
        get(&k, &format!("drm-shared-{region}")) == "0",
        "shared {region}: {k:?}"
    );
    check!(
        get(&k, "drm-total-system") == "256" && get(&k, "drm-resident-system") == "256",
        "system: {k:?}"
    );
    for b in mr.banks().map_err(e("BANKS"))? {
        check!(
            k.contains_key(&format!("drm-total-vram{}", b.index)),
            "no region for bank {}",
            b.index
        );
    }
    let other = Moreram::open().map_err(e("open"))?;
    let k2 = drm_keys(&other)?;
    check!(
        get(&k2, "drm-client-id") != get(&k, "drm-client-id"),
        "two files share a client id"
    );
    check!(
        get(&k2, &format!("drm-total-{region}")) == "0",
        "a new file shows memory: {k2:?}"
    );
    // Shared with another process: counted as shared.
    let token = a.share(None).map_err(e("SHARE"))?;
    let mut child: Child = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(_b) = mine.import(c.recv()) else {
            return 11;
        };
        c.send(1);
        c.recv();
        0
    });
    child.chan.send(token);
    check!(child.chan.recv() == 1, "import failed");
    let k3 = drm_keys(&mr)?;
    child.chan.send(0);
    child.wait();
    check!(
        get(&k3, &format!("drm-shared-{region}")) == "1024",
        "shared after import: {k3:?}"
    );
    Ok(())
}

/// The DRM device of each bank reports, in the fdinfo of its files, the bank's memory the
/// opening process owns, with the keys the DRM core adds (driver, pdev, client id).
fn drm_fdinfo() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let bo = bochs(&mr)?;
    let want_dev = std::fs::canonicalize(format!("/sys/bus/pci/devices/{}", bo.pci))
        .map_err(|er| er.to_string())?;
    let mut card = None;
    for entry in std::fs::read_dir("/sys/class/drm").map_err(|er| er.to_string())? {
        let entry = entry.map_err(|er| er.to_string())?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("card")
            && !name.contains('-')
            && std::fs::canonicalize(entry.path().join("device")).ok() == Some(want_dev.clone())
        {
            card = Some(name);
        }
    }
    let card = card.ok_or(format!("no DRM card for {}", bo.pci))?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/dri/{card}"))
        .map_err(|er| format!("/dev/dri/{card}: {er}"))?;
    let region = format!("drm-total-vram{}", bo.index);
    let k0 = drm_keys_of(f.as_raw_fd())?;
    check!(
        k0.get("drm-driver").map(String::as_str) == Some("moreram"),
        "drm-driver: {k0:?}"
    );
    check!(
        k0.get("drm-pdev").map(String::as_str) == Some(bo.pci.to_string().as_str()),
        "drm-pdev: {k0:?}"
    );
    check!(
        k0.get("drm-client-id")
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "drm-client-id: {k0:?}"
    );
    check!(
        k0.get(&region).map(String::as_str) == Some("0"),
        "{region} before: {k0:?}"
    );
    let _a = mr
        .alloc(2 * MIB, Placement::Bank(bo.index), false)
        .map_err(e("ALLOC"))?;
    let k1 = drm_keys_of(f.as_raw_fd())?;
    check!(
        k1.get(&region).map(String::as_str) == Some("2048"),
        "{region} after 2 MiB: {k1:?}"
    );
    Ok(())
}

fn knob(b: &moreram::Bank, name: &str) -> Result<u64, String> {
    let p = format!("/sys/bus/pci/devices/{}/moreram/{name}", b.pci);
    std::fs::read_to_string(&p)
        .map_err(|er| format!("{p}: {er}"))?
        .trim()
        .parse()
        .map_err(|er| format!("{p}: {er}"))
}

/// After a workload (two processes allocating), every bank's sysfs numbers agree with the report.
fn sysfs_numbers() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let bo = bochs(&mr)?;
    let bank = bo.index;
    let _a = mr
        .alloc(3 * MIB, Placement::Bank(bank), false)
        .map_err(e("ALLOC"))?;
    let mut child: Child = spawn(move |c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(_a) = mine.alloc(5 * MIB, Placement::Bank(bank), true) else {
            return 11;
        };
        c.send(1);
        c.recv();
        0
    });
    check!(
        child.chan.recv() == 1,
        "the other process could not allocate"
    );
    let result = (|| {
        for b in mr.banks().map_err(e("BANKS"))? {
            check!(knob(&b, "bank")? == u64::from(b.index), "bank index");
            check!(knob(&b, "size")? == b.size, "bank {}: size", b.index);
            check!(
                knob(&b, "free")? == b.free,
                "bank {}: free {} vs {}",
                b.index,
                knob(&b, "free")?,
                b.free
            );
            check!(
                knob(&b, "largest_free")? == b.largest_free,
                "bank {}: largest_free",
                b.index
            );
            check!(knob(&b, "pooled")? == b.pooled, "bank {}: pooled", b.index);
        }
        let b = bochs(&mr)?;
        check!(
            b.free == b.size - 8 * MIB,
            "bochs free {} after 8 MiB",
            b.free
        );
        check!(
            knob(&b, "processes")? == 2,
            "processes using bochs: {}",
            knob(&b, "processes")?
        );
        Ok(())
    })();
    child.chan.send(0);
    child.wait();
    result
}

/// `moreram stat --json` after a workload (a `moreram alloc --hold` process) says what the kernel
/// says.
fn cli_stat_json() -> TestResult {
    let mut hold = Command::new("moreram")
        .args(["alloc", "8M", "--vram-only", "--hold", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(e("moreram alloc"))?;
    let mut line = String::new();
    BufReader::new(hold.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(e("read"))?;
    let result = (|| {
        let a: serde_json::Value =
            serde_json::from_str(&line).map_err(|er| format!("alloc --json: {er}: {line:?}"))?;
        check!(
            a["size"] == 8 * MIB && a["tier"] == "vram",
            "alloc --json: {a}"
        );
        let pid = a["pid"].as_u64().ok_or("no pid")?;
        let out = Command::new("moreram")
            .args(["stat", "--json"])
            .output()
            .map_err(e("moreram stat"))?;
        check!(out.status.success(), "moreram stat --json failed");
        let s: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|er| format!("stat --json: {er}"))?;
        let mr = Moreram::open().map_err(e("open"))?;
        let tier = mr.tier().map_err(e("TIER"))?;
        check!(
            s["vram_size"] == tier.vram_size && s["vram_free"] == tier.vram_free,
            "tier numbers: {s}"
        );
        let banks = mr.banks().map_err(e("BANKS"))?;
        let sb = s["banks"].as_array().ok_or("no banks")?;
        check!(
            sb.len() == banks.len(),
            "{} banks in the CLI, {} in the kernel",
            sb.len(),
            banks.len()
        );
        for (j, b) in sb.iter().zip(&banks) {
            check!(
                j["index"] == b.index
                    && j["size"] == b.size
                    && j["free"] == b.free
                    && j["largest_free"] == b.largest_free,
                "bank {}: {j}",
                b.index
            );
        }
        let procs = s["processes"].as_array().ok_or("no processes")?;
        let me = procs
            .iter()
            .find(|p| p["pid"] == pid)
            .ok_or(format!("pid {pid} not in {s}"))?;
        check!(
            me["vram"] == 8 * MIB && me["comm"] == "moreram",
            "holder: {me}"
        );
        let top = Command::new("moreram")
            .args(["top", "--json", "--count", "1"])
            .output()
            .map_err(e("moreram top"))?;
        let t: serde_json::Value =
            serde_json::from_slice(&top.stdout).map_err(|er| format!("top --json: {er}"))?;
        check!(
            t.as_array()
                .is_some_and(|a| a.iter().any(|p| p["pid"] == pid)),
            "top --json: {t}"
        );
        Ok(())
    })();
    let _ = hold.kill();
    let _ = hold.wait();
    result
}

const DBG: &str = "/sys/kernel/debug/moreram";

fn dbg_read(name: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("{DBG}/{name}")).map_err(|er| format!("{DBG}/{name}: {er}"))
}

fn dbg_write(name: &str, v: &str) -> Result<(), String> {
    std::fs::write(format!("{DBG}/{name}"), v).map_err(|er| format!("{DBG}/{name} <- {v}: {er}"))
}

fn dbg_u64(name: &str) -> Result<u64, String> {
    dbg_read(name)?
        .trim()
        .parse()
        .map_err(|er| format!("{name}: {er}"))
}

/// `banks` and `processes` in debugfs agree with the ioctl reports after a workload; the free
/// block histogram adds up to the free memory.
fn debugfs_numbers() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let bo = bochs(&mr)?;
    let _a = mr
        .alloc(3 * MIB + 4096, Placement::Bank(bo.index), false)
        .map_err(e("ALLOC"))?;
    let _b = mr
        .alloc(MIB, Placement::SystemOnly, false)
        .map_err(e("ALLOC system"))?;
    let text = dbg_read("banks")?;
    for b in mr.banks().map_err(e("BANKS"))? {
        let head = format!("bank {} ", b.index);
        let mut lines = text.lines().skip_while(|l| !l.starts_with(&head));
        check!(
            lines.next().is_some(),
            "bank {} missing in debugfs banks",
            b.index
        );
        let nums = lines.next().ok_or("no size line")?;
        let want = format!(
            "  size {} free {} largest_free {} pooled {}",
            b.size, b.free, b.largest_free, b.pooled
        );
        check!(
            nums == want,
            "bank {}: {nums:?}, expected {want:?}",
            b.index
        );
        let _frag = lines.next().ok_or("no fragmentation line")?;
        let blocks = lines.next().ok_or("no free blocks line")?;
        // "4 KiB:3 8 KiB:1 ..." in pairs of "4" and "KiB:3".
        let mut sum = 0u64;
        let parts: Vec<&str> = blocks
            .trim_start_matches("  free blocks:")
            .split_whitespace()
            .collect();
        for pair in parts.chunks(2) {
            let n: u64 = pair[0]
                .parse()
                .map_err(|_| format!("bad histogram: {blocks:?}"))?;
            let (unit, count) = pair
                .get(1)
                .and_then(|p| p.split_once(':'))
                .ok_or(format!("bad histogram: {blocks:?}"))?;
            let size = n * if unit == "MiB" { MIB } else { 1024 };
            sum += size
                * count
                    .parse::<u64>()
                    .map_err(|_| format!("bad count in {blocks:?}"))?;
        }
        check!(
            sum == b.free,
            "bank {}: histogram adds up to {sum}, free is {}",
            b.index,
            b.free
        );
    }
    let procs = dbg_read("processes")?;
    let me = std::process::id();
    check!(
        procs.contains(&format!("opened by pid {me}")),
        "my file is not in debugfs processes"
    );
    check!(
        procs.contains(&format!(
            "held by pid {me}: {} bytes vram bank {}",
            3 * MIB + 4096,
            bo.index
        )),
        "my VRAM handle is not listed:\n{procs}"
    );
    check!(
        procs.contains(&format!("held by pid {me}: {MIB} bytes system")),
        "my system handle is not listed"
    );
    Ok(())
}

/// memdebug fills freed VRAM with poison and checks it on reuse: a write to freed memory
/// (simulated through `poke`) is caught, and a clean reuse is not reported.
fn memdebug_poison() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let bo = bochs(&mr)?;
    check!(bo.free == bo.size, "bochs bank not empty");
    dbg_write("memdebug", "Y")?;
    let result = (|| {
        let before = dbg_u64("poison_errors")?;
        // Whole bank: the offsets are known.
        for round in 0..2 {
            let a = mr
                .alloc(bo.size, Placement::Bank(bo.index), false)
                .map_err(e("ALLOC"))?;
            a.free().map_err(e("FREE"))?;
            if round == 1 {
                // A stray write into freed memory.
                dbg_write("poke", &format!("{} {} {}", bo.index, 5 * 4096 + 8, 0x1234))?;
            }
            let b = mr
                .alloc(bo.size, Placement::Bank(bo.index), false)
                .map_err(e("ALLOC again"))?;
            let mut m = b.map().map_err(e("mmap"))?;
            check!(
                m.as_slice().iter().all(|&x| x == 0),
                "reused memory not zeroed"
            );
            m.as_mut_slice()[..8].copy_from_slice(&[1; 8]);
            drop(m);
            b.free().map_err(e("FREE"))?;
            let now = dbg_u64("poison_errors")?;
            if round == 0 {
                check!(
                    now == before,
                    "clean reuse reported as a poison error ({before} -> {now})"
                );
            } else {
                check!(
                    now == before + 1,
                    "the write after free was not caught ({before} -> {now})"
                );
            }
        }
        Ok(())
    })();
    dbg_write("memdebug", "N")?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    result
}

/// memdebug reports a file closed while its allocation is still mapped by another process.
fn memdebug_leak() -> TestResult {
    dbg_write("memdebug", "Y")?;
    let result = (|| {
        let before = dbg_u64("leaks")?;
        let mut owner: Child = spawn(|c| {
            let Ok(mine) = Moreram::open() else { return 10 };
            let Ok(a) = mine.alloc(4 * 4096, Placement::PreferVram, false) else {
                return 11;
            };
            let Ok(t) = a.share(None) else {
                return 12;
            };
            c.send(t);
            c.recv();
            // Closed with the allocation in it, not freed first.
            a.into_raw();
            0
        });
        let token = owner.chan.recv();
        let mr = Moreram::open().map_err(e("open"))?;
        let h = mr.import(token).map_err(e("IMPORT"))?;
        let m = mr
            .map_raw(
                h.mmap_offset(),
                h.size() as usize,
                libc::PROT_READ,
                libc::MAP_SHARED,
            )
            .map_err(e("mmap"))?;
        owner.chan.send(0);
        owner.wait();
        let after = dbg_u64("leaks")?;
        drop(m);
        check!(
            after == before + 1,
            "leak not reported ({before} -> {after})"
        );
        Ok(())
    })();
    dbg_write("memdebug", "N")?;
    result
}

/// Failures injected through the kernel's fault-injection framework come back as ENOMEM and
/// leave nothing behind.
fn fault_injection() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let before = mr.tier().map_err(e("TIER"))?;
    let banks_before = mr.banks().map_err(e("BANKS"))?;
    dbg_write("fail_alloc/probability", "100")?;
    dbg_write("fail_alloc/interval", "1")?;
    dbg_write("fail_alloc/times", "3")?;
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(
            mr.alloc(MIB, Placement::PreferVram, false)
                .map_err(|er| er.raw_os_error()),
        );
    }
    dbg_write("fail_alloc/probability", "0")?;
    dbg_write("fail_alloc/times", "1")?;
    for r in &results[..3] {
        check!(
            matches!(r, Err(Some(libc::ENOMEM))),
            "injected failure gave {r:?}, expected ENOMEM"
        );
    }
    let ok = results
        .remove(3)
        .map_err(|er| format!("the fourth allocation failed: {er:?}"))?;
    ok.free().map_err(e("FREE"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let after = mr.tier().map_err(e("TIER"))?;
    check!(
        after.vram_free == before.vram_free
            && after.system_used == before.system_used
            && after.file_allocs == 0,
        "failures left something: {before:?} -> {after:?}"
    );
    check!(
        mr.banks().map_err(e("BANKS"))? == banks_before,
        "bank reports changed"
    );
    Ok(())
}

/// When part of a VRAM allocation goes back and the bank cannot take back the rest of its block
/// (an injected failure of the buddy's bookkeeping), the whole allocation is retired: the pages
/// another process still maps fault (SIGBUS) rather than show bytes the bank may hand out again,
/// and every page is back in the bank, its free-space map included.
fn release_failure_retires() -> TestResult {
    const PAGE: u64 = 4096;
    let mr = Moreram::open().map_err(e("open"))?;
    let bo = bochs(&mr)?;
    let a = mr
        .alloc(4 * PAGE, Placement::Bank(bo.index), true)
        .map_err(e("ALLOC"))?;
    let mut child: Child = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(b) = mine.import(c.recv()) else {
            return 11;
        };
        c.send(1);
        c.recv();
        // Pages 2 and 3 are ours now.
        let Ok(m) = mine.map_raw(
            b.mmap_offset() + 2 * PAGE,
            2 * PAGE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
        ) else {
            return 12;
        };
        // SAFETY: inside the mapping.
        unsafe { std::ptr::write_volatile(m.as_ptr(), 0x5a) };
        c.send(2);
        c.recv();
        // Retired: this read must fault.
        // SAFETY: inside the mapping; it must raise SIGBUS.
        let v = unsafe { std::ptr::read_volatile(m.as_ptr()) };
        if v == 0x5a {
            13
        } else {
            14
        }
    });
    let token = a.share(Some(child.pid)).map_err(e("SHARE"))?;
    child.chan.send(token);
    check!(child.chan.recv() == 1, "the receiver could not import");
    a.control(Control::Give(child.pid), 2 * PAGE, 2 * PAGE)
        .map_err(e("GIVE"))?;
    child.chan.send(0);
    check!(
        child.chan.recv() == 2,
        "the receiver could not write its pages"
    );
    // Our pages 0 and 1 go back when we let go; taking back pages 2 and 3 fails.
    dbg_write("fail_release/probability", "100")?;
    dbg_write("fail_release/interval", "1")?;
    dbg_write("fail_release/times", "1")?;
    let freed = a.free().map_err(e("FREE"));
    dbg_write("fail_release/probability", "0")?;
    freed?;
    child.chan.send(0);
    let (sig, code) = child.wait();
    check!(
        sig == libc::SIGBUS,
        "the receiver's read after the failed release: signal {sig}, exit {code}; expected SIGBUS"
    );
    let after = bochs(&mr)?;
    check!(
        after.free == bo.free && after.largest_free == bo.largest_free,
        "the bank did not get everything back: free {} -> {}, largest free {} -> {}",
        bo.free,
        after.free,
        bo.largest_free,
        after.largest_free
    );
    Ok(())
}
