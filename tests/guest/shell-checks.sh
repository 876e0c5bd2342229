#!/bin/sh
# Shell-level checks of AdrOS's user space, run by tests/tests/s08_shell.rs with busybox sh.
# Each check prints "ok NAME" or "not ok NAME: got ..."; the last line is
# "shell-checks: P passed, F failed".
pass=0; fail=0
check() { # check NAME EXPECTED COMMAND...
    name=$1; want=$2; shift 2
    got=$("$@" 2>&1)
    if [ "$got" = "$want" ]; then pass=$((pass+1)); echo "ok $name"; else fail=$((fail+1)); echo "not ok $name: got [$got] want [$want]"; fi
}
t() { sh -c "$1"; }
W=/tmp/shell-checks; rm -rf $W; mkdir -p $W; cd $W || exit 1

check echo hello t 'echo hello'
check printf_fmt "a-1-2.50" t 'printf "%s-%d-%.2f" a 1 2.5'
check arith 42 t 'echo $((6*7))'
check var_expand "x=5" t 'x=5; echo "x=$x"'
check cmd_subst 3 t 'echo $(echo 1 2 3 | wc -w)'
check pipe_tr HELLO t 'echo hello | tr a-z A-Z'
check pipe_chain 3 t 'printf "a\nb\nc\n" | sort -r | wc -l'
check redirect_out one t 'echo one > f1; cat f1'
check redirect_append "one
two" t 'echo two >> f1; cat f1'
check redirect_in 2 t 'wc -l < f1'
check stderr_redirect err t 'sh -c "echo err >&2" 2>&1'
check dev_null "" t 'echo gone > /dev/null'
check heredoc "a b" t 'cat <<X
a b
X'
check exit_status 3 t 'sh -c "exit 3"; echo $?'
check true_false "0 1" t 'true; a=$?; false; echo "$a $?"'
check and_or "yes" t 'false || echo yes'
check if_test big t 'if [ 5 -gt 3 ]; then echo big; fi'
check for_loop "1 2 3" t 'for i in 1 2 3; do printf "%s " $i; done | sed "s/ $//"'
check while_loop 3 t 'i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i'
check case_stmt two t 'case b in a) echo one;; b) echo two;; esac'
check function_ret 7 t 'f() { return 7; }; f; echo $?'
check subshell outer t 'x=outer; (x=inner); echo $x'
check background_wait done t 'sleep 0.1 & wait; echo done'
check mkdir_p yes t 'mkdir -p d/e/f && [ -d d/e/f ] && echo yes'
check touch_ls f2 t 'touch f2 && ls f2'
check cp_cmp same t 'cp f1 f3 && cmp -s f1 f3 && echo same'
check mv_file moved t 'mv f3 f4 && [ ! -e f3 ] && [ -e f4 ] && echo moved'
check rm_file gone t 'rm f4 && [ ! -e f4 ] && echo gone'
check rmdir_tree gone t 'rm -r d && [ ! -e d ] && echo gone'
check symlink_read f1 t 'ln -s f1 l1 && readlink l1'
check symlink_follow "one
two" t 'cat l1'
check hardlink_count 2 t 'ln f1 h1 && stat -c %h f1'
check chmod_mode 640 t 'chmod 640 f1 && stat -c %a f1'
check file_size 8 t 'stat -c %s f1'
check truncate_file 3 t 'printf abcdef > tr; truncate -s 3 tr; stat -c %s tr'
check dd_zero 4096 t 'dd if=/dev/zero of=z bs=1024 count=4 2>/dev/null; stat -c %s z'
check urandom_len 16 t 'head -c 16 /dev/urandom | wc -c'
check find_name ./f1 t 'find . -name f1'
check grep_count 1 t 'grep -c two f1'
check sed_subst "one
TWO" t 'sed s/two/TWO/ f1'
check awk_sum 6 t 'printf "1\n2\n3\n" | awk "{s+=\$1} END {print s}"'
check sort_uniq "a
b" t 'printf "b\na\nb\n" | sort | uniq'
check head_tail 3 t 'seq 1 5 | head -3 | tail -1'
check cut_field b t 'echo a:b:c | cut -d: -f2'
check xargs_echo "1 2" t 'printf "1\n2\n" | xargs echo'
check md5_stable ok t 'a=$(md5sum f1 | cut -d" " -f1); b=$(cat f1 | md5sum | cut -d" " -f1); [ "$a" = "$b" ] && echo ok'
check tar_roundtrip ok t 'mkdir tr1; echo x > tr1/a; tar cf t.tar tr1 && rm -r tr1 && tar xf t.tar && [ "$(cat tr1/a)" = x ] && echo ok'
check gzip_roundtrip "one
two" t 'gzip -c f1 > f1.gz && gunzip -c f1.gz'
check uname_s Linux t 'uname -s'
check hostname_file adros t 'cat /etc/hostname'
check id_root 0 t 'id -u'
check pwd_cd /tmp t 'cd /tmp && pwd'
check env_var bar t 'FOO=bar sh -c "echo \$FOO"'
check umask_create 600 t 'umask 077; touch um; stat -c %a um'
check proc_self_pid ok t 'p=$(sh -c "echo \$\$ ; readlink /proc/self" | tr "\n" " "); set -- $p; [ "$1" = "$2" ] && echo ok'
check proc_meminfo ok t 'grep -q MemTotal /proc/meminfo && echo ok'
check proc_cpuinfo ok t '[ $(grep -c ^processor /proc/cpuinfo) -ge 1 ] && echo ok'
check proc_mounts ok t 'grep -q " / " /proc/mounts && echo ok'
check ps_lists_init ok t 'ps | grep -q "^ *1 " && echo ok'
check kill_term 143 t 'sleep 10 & p=$!; kill $p; wait $p 2>/dev/null; echo $?' 2>/dev/null
check trap_usr1 caught t 'trap "echo caught" USR1; kill -USR1 $$'
check fifo_rw hi t 'mkfifo ff && (echo hi > ff &) && cat ff'
check date_year ok t '[ $(date +%Y) -ge 2024 ] && echo ok'
check sleep_time ok t 's=$(date +%s); sleep 1; e=$(date +%s); [ $((e-s)) -ge 1 ] && echo ok'
check bash_array "x y" t 'bash -c "a=(x y); echo \${a[@]}"'
check bash_regex yes t 'bash -c "[[ abc =~ ^a.c$ ]] && echo yes"'
check large_file 1048576 t 'dd if=/dev/zero of=big bs=65536 count=16 2>/dev/null; stat -c %s big'
check many_files 200 t 'mkdir many; i=0; while [ $i -lt 200 ]; do : > many/f$i; i=$((i+1)); done; ls many | wc -l'
check df_runs ok t 'df / >/dev/null && echo ok'
check free_runs ok t 'free >/dev/null && echo ok'

cd /; rm -rf $W
echo "shell-checks: $pass passed, $fail failed"
[ $fail -eq 0 ]
