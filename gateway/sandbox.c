/*
 * sandbox.c: what the daemon may no longer do once it serves clients.
 *
 * buildgate parses hostile input (HTTP/1.1, HTTP/2, protobuf) all day, so
 * after start-up it gives up what no gateway needs: running programs,
 * tracing, mounting, loading kernel code, changing identity, and gaining
 * privileges.  It is a deny-list on purpose: an allow-list would have to
 * follow glibc's resolver, libevent backends and sanitizer runtimes, and a
 * syscall missed there would take the daemon down in production; the calls
 * below are the ones an attacker with code execution wants first.
 * Denied calls fail with EPERM rather than killing the process, so a bug
 * shows up as an error in the log, not as every user's build dying.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include <seccomp.h>

#include "gateway/log.h"

int gw_sandbox_enter(void)
{
  static const char *const deny[] = {
      "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
      "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount", "open_tree", "fsopen",
      "fsmount", "fspick", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
      "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "reboot", "swapon",
      "swapoff", "acct", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
      "personality", "iopl", "ioperm", "open_by_handle_at", "name_to_handle_at", "quotactl", "syslog",
      "settimeofday", "clock_settime", "adjtimex", "sethostname", "setdomainname", "pidfd_getfd",
  };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    LOG_ERR("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return -1;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) {
    LOG_ERR("sandbox: seccomp_init failed");
    return -1;
  }
  for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++) {
    int nr = seccomp_syscall_resolve_name(deny[i]);
    if (nr == __NR_SCMP_ERROR)
      continue; /* not on this architecture */
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) != 0) {
      LOG_ERR("sandbox: cannot deny %s", deny[i]);
      seccomp_release(ctx);
      return -1;
    }
  }
  /* clone() is how threads are made too; only refuse new processes. */
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, 0x00010000 /* CLONE_THREAD */, 0));
  /* clone3 passes its flags in memory a filter cannot read: answer ENOSYS,
   * which makes glibc fall back to clone() for threads. */
  if (rc == 0 && seccomp_syscall_resolve_name("clone3") != __NR_SCMP_ERROR)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), seccomp_syscall_resolve_name("clone3"), 0);
  if (rc == 0)
    rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    LOG_ERR("sandbox: cannot load the seccomp filter: %s", strerror(-rc));
    return -1;
  }
  LOG_INFO("sandbox: seccomp filter loaded (exec, ptrace, mount, module and identity calls denied)");
  return 0;
}
