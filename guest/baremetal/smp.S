/* Two harts (run with -smp 2): hart 0 wakes hart 1 from wfi with a CLINT
   IPI; both increment shared counters with amoadd.d/.w, with an LR/SC
   compare-and-swap loop and under an LR/SC spin lock (1000 amoadds and
   200000 CAS/locked increments each, so that a race would show);
   message passing with fences; an IPI from hart 1 interrupts hart 0. */
#define HAS_SECONDARY
#include "common.h"

#define ITERATIONS 1000             /* amoadd per hart */
#define LOCK_ITERATIONS 200000      /* lr/sc CAS and spin-locked increments per hart */
#define WAIT_LIMIT 100000000

/* bounded wait until the doubleword at `sym` is >= value (else fail) */
.macro WAIT_FOR sym, value
    li      s11, WAIT_LIMIT
.Lw\@:
    la      t5, \sym
    ld      t5, 0(t5)
    li      t6, \value
    bgeu    t5, t6, .Ld\@
    addi    s11, s11, -1
    bnez    s11, .Lw\@
    j       fail
.Ld\@:
.endm

/* the work both harts do; clobbers t0..t2, s0..s2 */
.macro SHARED_WORK
    /* atomic adds */
    la      s0, counter_d
    la      s1, counter_w
    li      s2, ITERATIONS
    li      t1, 1
.Lamo\@:
    amoadd.d zero, t1, (s0)
    amoadd.w zero, t1, (s1)
    addi    s2, s2, -1
    bnez    s2, .Lamo\@
    /* compare-and-swap loop with lr/sc */
    la      s0, counter_cas
    li      s2, LOCK_ITERATIONS
.Lcas\@:
    lr.d    t0, (s0)
    addi    t0, t0, 1
    sc.d    t1, t0, (s0)
    bnez    t1, .Lcas\@
    addi    s2, s2, -1
    bnez    s2, .Lcas\@
    /* plain load/add/store under an lr/sc spin lock */
    la      s0, lock
    la      s1, counter_locked
    li      s2, LOCK_ITERATIONS
.Lacq\@:
    lr.w.aq t0, (s0)
    bnez    t0, .Lacq\@
    li      t0, 1
    sc.w    t1, t0, (s0)
    bnez    t1, .Lacq\@
    ld      t0, 0(s1)
    li      t2, 20                      /* widen the window a race would need */
.Lcs\@:
    addi    t2, t2, -1
    bnez    t2, .Lcs\@
    addi    t0, t0, 1
    sd      t0, 0(s1)
    amoswap.w.rl zero, zero, (s0)       /* release */
    addi    s2, s2, -1
    bnez    s2, .Lacq\@
.endm

    .text
main:
    PRINT   "smp: IPI wake-up, shared counters (amoadd, lr/sc, spin lock), fences\n"

    TEST    1, "hart 1 runs and waits in wfi; an IPI (msip[1]) wakes it"
    WAIT_FOR hart1_alive, 1
    li      t0, 100000                  /* give it time to (wrongly) run on */
1:  addi    t0, t0, -1
    bnez    t0, 1b
    LOAD_REC t0, hart1_woken, 0
    CHECK   t0, 0
    li      t0, CLINT_BASE + 4          /* msip of hart 1 */
    li      t1, 1
    sw      t1, 0(t0)
    WAIT_FOR hart1_woken, 1
    li      t0, CLINT_BASE + 4
    lw      t0, 0(t0)
    CHECK   t0, 0                       /* hart 1 cleared it */

    TEST    2, "both harts: amoadd to 2000, lr/sc CAS and spin-locked counters to 400000"
    li      t0, 1
    la      t1, go
    sd      t0, 0(t1)
    WAIT_FOR hart1_ready, 1             /* start together */
    SHARED_WORK
    WAIT_FOR hart1_done, 1
    LOAD_REC t0, counter_d, 0
    CHECK   t0, 2 * ITERATIONS
    LOAD_REC t0, counter_w, 0
    CHECK   t0, 2 * ITERATIONS
    LOAD_REC t0, counter_cas, 0
    CHECK   t0, 2 * LOCK_ITERATIONS
    LOAD_REC t0, counter_locked, 0
    CHECK   t0, 2 * LOCK_ITERATIONS

    TEST    3, "message passing: data written before the flag is seen after it"
    li      s0, 1
    la      s1, mp_flag
    la      s2, mp_data
    li      s11, WAIT_LIMIT
3:  addi    s11, s11, -1
    beqz    s11, fail
    ld      t0, 0(s1)
    bltu    t0, s0, 3b
    fence   r, r
    ld      t1, 0(s2)                   /* hart 1 writes data = n, then flag = n */
    bltu    t1, t0, fail
    addi    s0, t0, 1
    li      t2, ITERATIONS
    bleu    s0, t2, 3b

    TEST    4, "an IPI from hart 1 interrupts hart 0 (mcause = M software)"
    li      t0, MIP_MSIP
    csrs    mie, t0
    csrsi   mstatus, MSTATUS_MIE
    li      t0, 1
    la      t1, want_ipi
    sd      t0, 0(t1)
    WAIT_FOR m_irq_rec + REC_COUNT, 1
    csrci   mstatus, MSTATUS_MIE
    LOAD_REC t0, m_irq_rec, REC_CAUSE
    CHECK   t0, IRQ(3)
    li      t0, CLINT_BASE
    lw      t0, 0(t0)
    CHECK   t0, 0

    j       pass

/* ------------------------------------------------------------ hart 1 */
secondary_main:
    csrr    t0, mhartid
    li      t1, 1
    bne     t0, t1, park                /* only hart 1 takes part */
    li      t0, MIP_MSIP
    csrs    mie, t0                     /* wfi wakes on it; mstatus.MIE = 0 */
    li      t0, 1
    la      t1, hart1_alive
    sd      t0, 0(t1)
1:  wfi
    csrr    t0, mip
    andi    t0, t0, MIP_MSIP
    beqz    t0, 1b
    li      t0, CLINT_BASE + 4
    sw      zero, 0(t0)
2:  csrr    t0, mip                     /* the clear reaches mip */
    andi    t0, t0, MIP_MSIP
    bnez    t0, 2b
    csrw    mie, zero
    li      t0, 1
    la      t1, hart1_woken
    sd      t0, 0(t1)

3:  la      t0, go
    ld      t0, 0(t0)
    beqz    t0, 3b
    li      t0, 1
    la      t1, hart1_ready
    sd      t0, 0(t1)
    SHARED_WORK
    li      t0, 1
    la      t1, hart1_done
    sd      t0, 0(t1)

    la      s1, mp_flag
    la      s2, mp_data
    li      s0, 1
4:  sd      s0, 0(s2)
    fence   w, w
    sd      s0, 0(s1)
    li      t0, 200                     /* let hart 0 catch up sometimes */
5:  addi    t0, t0, -1
    bnez    t0, 5b
    addi    s0, s0, 1
    li      t2, ITERATIONS
    bleu    s0, t2, 4b

6:  la      t0, want_ipi
    ld      t0, 0(t0)
    beqz    t0, 6b
    li      t0, CLINT_BASE              /* msip of hart 0 */
    li      t1, 1
    sw      t1, 0(t0)
    j       park

    .data
    .balign 64
hart1_alive:    .dword 0
hart1_woken:    .dword 0
hart1_done:     .dword 0
go:             .dword 0
hart1_ready:    .dword 0
want_ipi:       .dword 0
    .balign 64
counter_d:      .dword 0
counter_w:      .dword 0
counter_cas:    .dword 0
counter_locked: .dword 0
    .balign 64
lock:           .dword 0
    .balign 64
mp_flag:        .dword 0
mp_data:        .dword 0
