/* Self-modifying code: write instructions to memory, fence.i, execute them;
   rewrite and execute again - in a fresh buffer, in code already run 1000
   times, in the running function itself (straight line and inside a loop),
   compressed instructions, and a 32-bit instruction that straddles a 4 KiB
   page boundary whose second half is rewritten. */
#include "common.h"

/* copy the 32-bit instruction at template `tmpl` to address reg+off */
.macro PUT32 reg, off, tmpl
    la      t0, \tmpl
    lwu     t1, 0(t0)
    sw      t1, \off(\reg)
.endm
/* copy the 16-bit instruction at template `tmpl` to address reg+off */
.macro PUT16 reg, off, tmpl
    la      t0, \tmpl
    lhu     t1, 0(t0)
    sh      t1, \off(\reg)
.endm

/* Instruction templates, assembled here and copied at run time. */
    .pushsection .rodata.templates, "a"
    .balign 4
t_li42:     addi    a0, zero, 42
t_lui:      lui     a0, 0x12345
t_ret:      jalr    zero, 0(ra)
t_inc1:     addi    a0, a0, 1
t_inc2:     addi    a0, a0, 2
t_a1_7:     addi    a1, zero, 7
t_a1_add16: addi    a1, a1, 16
t_li99:     addi    a0, zero, 99
t_li123:    addi    a0, zero, 123
    .option push
    .option rvc
t_cli5:     c.li    a0, 5
t_clim3:    c.li    a0, -3
t_cjr:      c.jr    ra
t_cnop:     c.nop
    .option pop
    .popsection

    .text
main:
    PRINT   "smc: self-modifying code with fence.i\n"
    la      s0, code_buf

    TEST    1, "write an instruction, fence.i, execute it"
    PUT32   s0, 0, t_li42
    PUT32   s0, 4, t_ret
    fence.i
    li      a0, 0
    jalr    ra, 0(s0)
    CHECK   a0, 42

    TEST    2, "rewrite it, fence.i, execute the new one"
    PUT32   s0, 0, t_lui
    fence.i
    li      a0, 0
    jalr    ra, 0(s0)
    CHECK   a0, 0x12345000

    TEST    3, "rewrite code that has run 1000 times"
    PUT32   s0, 0, t_inc1
    fence.i
    li      a0, 0
    li      s1, 1000
1:  jalr    ra, 0(s0)
    addi    s1, s1, -1
    bnez    s1, 1b
    CHECK   a0, 1000
    PUT32   s0, 0, t_inc2
    fence.i
    li      s1, 1000
2:  jalr    ra, 0(s0)
    addi    s1, s1, -1
    bnez    s1, 2b
    CHECK   a0, 3000

    TEST    4, "patch the next instruction of the running code"
    la      s1, 3f
    PUT32   s1, 0, t_a1_7
    fence.i
3:  addi    a1, zero, 1
    CHECK   a1, 7

    TEST    5, "patch a loop body between two iterations"
    li      a1, 0
    li      s2, 0
4:  addi    a1, a1, 1                   /* becomes addi a1, a1, 16 */
    bnez    s2, 5f
    la      s1, 4b
    PUT32   s1, 0, t_a1_add16
    fence.i
    li      s2, 1
    j       4b
5:  CHECK   a1, 17

    TEST    6, "compressed instructions written and rewritten"
    PUT16   s0, 0, t_cli5
    PUT16   s0, 2, t_cjr
    fence.i
    li      a0, 0
    jalr    ra, 0(s0)
    CHECK   a0, 5
    PUT16   s0, 0, t_clim3
    fence.i
    jalr    ra, 0(s0)
    CHECK   a0, -3

    TEST    7, "a 32-bit instruction across a page boundary, second half rewritten"
    la      s1, code_buf + 8192         /* a page boundary */
    PUT16   s1, -4, t_cnop
    la      t0, t_li99                  /* low half ends page 1, high half starts page 2 */
    lhu     t1, 0(t0)
    sh      t1, -2(s1)
    lhu     t1, 2(t0)
    sh      t1, 0(s1)
    PUT16   s1, 2, t_cjr
    fence.i
    addi    s2, s1, -4
    li      a0, 0
    jalr    ra, 0(s2)
    CHECK   a0, 99
    la      t0, t_li123                 /* same low half; rewrite only page 2 */
    lhu     t1, 0(t0)
    lhu     t2, -2(s1)
    CHECKR  t1, t2
    lhu     t1, 2(t0)
    sh      t1, 0(s1)
    fence.i
    li      a0, 0
    jalr    ra, 0(s2)
    CHECK   a0, 123

    j       pass

    .bss
    .balign 4096
code_buf:   .skip 4096 * 3
