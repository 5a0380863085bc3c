/* Make one process see an AVX2-only x86 CPU (no AVX-512, no AVX512-BF16/VNNI, no AMX, no AVX-VNNI).
 *
 * Why: the libraries the app runs on (XNNPACK under LiteRT, oneDNN under TensorFlow, numpy) pick their
 * kernels from the CPUID instruction, so a benchmark on an AVX-512 machine says nothing about the AVX2-only
 * CPUs most users have. Linux can make CPUID trap in a process (arch_prctl ARCH_SET_CPUID, where the CPU
 * and kernel offer "cpuid_fault"); this library, preloaded, turns that on before the program runs and answers
 * each trapped CPUID with the real answer less the feature bits above AVX2. Every library then chooses the
 * kernels it would choose on such a CPU; the clock, caches and core stay this machine's.
 *
 * Used by bench/as_avx2.py (LD_PRELOAD); FAKE_CPUID_LOG=1 prints each leaf answered. Known gap: a program
 * that installs a SIGSEGV handler with signal() (glibc calls its internal sigaction, which this cannot see)
 * replaces ours; Python, numpy, TensorFlow and LiteRT use sigaction.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction next_segv;  /* the program's own SIGSEGV handler, called for real faults */
static int log_leaves;

static void real_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);  /* let CPUID run for this one call */
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
}

/* Feature bits an AVX2-only CPU (AMD Zen 3, Intel Haswell to Comet Lake) does not report. */
static void mask_above_avx2(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    if (leaf == 7 && sub == 0) {
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |
                  (1u << 31));                                             /* AVX512 F DQ IFMA PF ER CD BW VL */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));  /* VBMI VBMI2 VNNI BITALG VPOPCNTDQ */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
                                                  /* 4VNNIW 4FMAPS VP2INTERSECT AMX-BF16 AVX512-FP16 AMX-TILE AMX-INT8 */
    } else if (leaf == 7 && sub == 1) {
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 23));   /* AVX-VNNI, AVX512-BF16, AVX-IFMA */
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));  /* AVX-VNNI-INT8, AVX-NE-CONVERT, -INT16, AVX10 */
    } else if (leaf == 0xd && sub == 0) {
        r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));  /* opmask, ZMM state, AMX state */
    } else if (leaf == 0x24) {
        r[0] = r[1] = r[2] = r[3] = 0;                   /* AVX10 leaf */
    }
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction(void) {
    static sigaction_fn real;
    if (!real) real = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return real;
}

static void log_leaf(uint32_t leaf, uint32_t sub) {  /* async-signal-safe: write(2) of hex digits */
    char line[64] = "fake cpuid: leaf 0x";
    size_t n = strlen(line);
    for (int shift = 28; shift >= 0; shift -= 4) line[n++] = "0123456789abcdef"[(leaf >> shift) & 0xf];
    line[n++] = '.';
    line[n++] = (char)('0' + (sub % 10));
    line[n++] = '\n';
    (void)!write(2, line, n);
}

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    int saved_errno = errno;
    ucontext_t *uc = ctx;
    unsigned char *ip = (unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {  /* a trapped CPUID */
        uint32_t leaf = (uint32_t)uc->uc_mcontext.gregs[REG_RAX], sub = (uint32_t)uc->uc_mcontext.gregs[REG_RCX];
        uint32_t r[4];
        real_cpuid(leaf, sub, r);
        mask_above_avx2(leaf, sub, r);
        uc->uc_mcontext.gregs[REG_RAX] = r[0];
        uc->uc_mcontext.gregs[REG_RBX] = r[1];
        uc->uc_mcontext.gregs[REG_RCX] = r[2];
        uc->uc_mcontext.gregs[REG_RDX] = r[3];
        uc->uc_mcontext.gregs[REG_RIP] += 2;
        if (log_leaves) log_leaf(leaf, sub);
        errno = saved_errno;
        return;
    }
    if (next_segv.sa_flags & SA_SIGINFO && next_segv.sa_sigaction) {
        next_segv.sa_sigaction(sig, info, ctx);
    } else if (next_segv.sa_handler != SIG_DFL && next_segv.sa_handler != SIG_IGN) {
        next_segv.sa_handler(sig);
    } else {
        /* a real fault: no handler of the program's, so the default action, by faulting again where it
         * happened (a core dump then shows the real place) */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction()(SIGSEGV, &dfl, NULL);
        if (info->si_code <= 0) raise(SIGSEGV);   /* sent by kill or raise: nothing would fault again */
    }
    errno = saved_errno;
}

/* Programs (Python's faulthandler, say) install their own SIGSEGV handler later: keep ours in front and
 * pass them every fault that is not a CPUID. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != SIGSEGV) return real_sigaction()(sig, act, old);
    if (old) *old = next_segv;
    if (act) next_segv = *act;
    return 0;
}

/* A thread that blocks SIGSEGV would be killed by its first trapped CPUID: never let SIGSEGV be blocked. */
static const sigset_t *without_segv(const sigset_t *set, sigset_t *copy) {
    if (!set) return NULL;
    *copy = *set;
    sigdelset(copy, SIGSEGV);
    return copy;
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    static int (*real)(int, const sigset_t *, sigset_t *);
    if (!real) real = (int (*)(int, const sigset_t *, sigset_t *))dlsym(RTLD_NEXT, "pthread_sigmask");
    sigset_t copy;
    return real(how, how == SIG_UNBLOCK ? set : without_segv(set, &copy), old);
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    static int (*real)(int, const sigset_t *, sigset_t *);
    if (!real) real = (int (*)(int, const sigset_t *, sigset_t *))dlsym(RTLD_NEXT, "sigprocmask");
    sigset_t copy;
    return real(how, how == SIG_UNBLOCK ? set : without_segv(set, &copy), old);
}

__attribute__((constructor)) static void start_trapping_cpuid(void) {
    log_leaves = getenv("FAKE_CPUID_LOG") && strcmp(getenv("FAKE_CPUID_LOG"), "1") == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    /* on the program's alternate stack where it has one (faulthandler's, for stack overflows); every other
     * signal waits while a CPUID is answered, so no handler runs CPUID while the trap is off */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    sigdelset(&sa.sa_mask, SIGSEGV);
    real_sigaction()(SIGSEGV, &sa, &next_segv);   /* whatever was there before is the program's */
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "avx2_only: this CPU or kernel cannot trap CPUID (no cpuid_fault); nothing is masked\n");
        _exit(3);
    }
}
