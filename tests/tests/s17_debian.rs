//! Debian's dynamically linked programs with their own `ld-linux-x86-64.so.2` and glibc:
//! GNU coreutils (`ls -l`, `sort`, `sha256sum`, `nproc`), Python 3 with its standard library,
//! and `stress-ng`, from the initrd `cargo xtask test` packs with `--add-deb`'s machinery
//! (`coreutils python3 stress-ng` and their dependencies). Each prints what it prints on
//! Linux. Skipped, and counted as skipped, when the Debian archive cannot be reached.
//! Bad input: an executable naming a missing program interpreter, or one that is no ELF file.

use std::time::Duration;

use adros_tests::{Boot, banner, debs_initrd, skip};

/// The host's results for the same commands (Linux 6.1, Debian 12): fixed inputs, so fixed
/// outputs.
const PY_OUT: &str = r#"{"md5": "222faae0862acdaeebb210b635dd5655", "sha256": "1c6a7fa0eb01125caafd3ae2b3560ae80d25e912707d3f8f0053e2a12573d707", "sorted": [1, 2, 3]}"#;
const SHA_OUT: &str = "1c6a7fa0eb01125caafd3ae2b3560ae80d25e912707d3f8f0053e2a12573d707  -";

const SCRIPT: &str = r#"
export TZ=UTC
echo "== ls"; /bin/ls --version | head -1
printf abc > /tmp/f; touch -d "2020-01-02 03:04:05" /tmp/f; /bin/ls -l /tmp/f
echo "== sort"; printf 'pear\napple\nfig\n10\n9\n' | /usr/bin/sort | tr '\n' ' '; echo
printf 'pear\napple\nfig\n10\n9\n' | /usr/bin/sort -n | tr '\n' ' '; echo
echo "== sha"; printf adros | /usr/bin/sha256sum
echo "== nproc"; /usr/bin/nproc --all; cat /sys/devices/system/cpu/online
echo "== py"; python3 -c 'import json,hashlib; print(json.dumps({"sha256": hashlib.sha256(b"adros").hexdigest(), "sorted": sorted([3,1,2]), "md5": hashlib.md5(b"adros").hexdigest()}, sort_keys=True))'
echo "py-rc=$?"
echo "== stress"; stress-ng --cpu 2 --timeout 5 2>&1; echo "stress-rc=$?"
echo "== badinterp"
python3 - <<'PY'
data = open("/usr/bin/sort", "rb").read()
for name, interp in (("/tmp/nointerp", b"/lib64/ld-linux-x86-64.so.9"), ("/tmp/badinterp", b"/tmp/notanelf-ld-linux.so.2")):
    open(name, "wb").write(data.replace(b"/lib64/ld-linux-x86-64.so.2", interp))
open("/tmp/notanelf-ld-linux.so.2", "w").write("not an ELF file\n")
PY
chmod +x /tmp/nointerp /tmp/badinterp /tmp/notanelf-ld-linux.so.2
/tmp/nointerp; echo "nointerp-rc=$?"
/tmp/badinterp; echo "badinterp-rc=$?"
echo "== after"; printf 'b\na\n' | /usr/bin/sort | tr '\n' ' '; echo
"#;

fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = format!("== {name}\n");
    let Some(b) = out.find(&start) else { return "" };
    let rest = &out[b + start.len()..];
    &rest[..rest.find("\n== ").map_or(rest.len(), |e| e + 1)]
}

#[test]
fn debian_dynamic_coreutils_python_and_stress_ng_print_what_they_print_on_linux() {
    let name = "s17_debian_dynamic_coreutils_python_and_stress_ng_print_what_they_print_on_linux";
    let initrd = match debs_initrd() {
        Ok(p) => p,
        Err(why) => return skip(name, &why),
    };
    let hex: String = SCRIPT.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name)
        .initrd(initrd)
        .mem_mib(2048)
        .smp(2)
        .args(&format!("loglevel=4 adros.exec={hex}"))
        .timeout(Duration::from_secs(600))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, status) = t.exec_result();
    let check = |ok: bool, what: &str| {
        if !ok {
            t.fail(&format!("{what}; the command printed:\n{out}"));
        }
    };
    let ls = section(&out, "ls");
    check(
        ls.contains("ls (GNU coreutils) 9.1\n"),
        "GNU ls (dynamically linked) did not run",
    );
    check(
        ls.contains("-rw-r--r-- 1 root root 3 Jan  2  2020 /tmp/f\n"),
        "ls -l printed another line than Linux's",
    );
    check(
        section(&out, "sort") == "10 9 apple fig pear \napple fig pear 9 10 \n",
        "sort / sort -n differ from Linux's",
    );
    check(section(&out, "sha").trim() == SHA_OUT, "sha256sum differs");
    check(
        section(&out, "nproc") == "2\n0-1\n",
        "nproc --all / /sys/devices/system/cpu/online do not say 2 CPUs",
    );
    check(
        section(&out, "py") == format!("{PY_OUT}\npy-rc=0\n"),
        "python3 with json and hashlib differs",
    );
    let stress = section(&out, "stress");
    check(
        stress.contains("dispatching hogs: 2 cpu")
            && stress.contains("successful run completed")
            && stress.contains("stress-rc=0")
            && !stress.contains("error"),
        "stress-ng --cpu 2 --timeout 5 did not run cleanly",
    );
    let bad = section(&out, "badinterp");
    check(
        bad.contains("nointerp-rc=127"),
        "a missing interpreter must fail as not found (127, ENOENT)",
    );
    check(
        bad.contains("badinterp-rc=126"),
        "an interpreter that is no ELF must fail as not executable (126, ELIBBAD)",
    );
    check(
        section(&out, "after") == "a b \n",
        "the system did not keep working",
    );
    check(status == 0, "the script did not exit 0");
}
