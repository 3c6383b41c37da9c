/* F and D extensions: fcsr/frm/fflags, arithmetic with exception flags,
   static and dynamic rounding modes, conversions (saturation, sign extension),
   fused multiply-add, min/max/compare NaN rules, fclass, and NaN-boxing of
   single-precision values (boxed results; unboxed operands read as the
   canonical NaN). */
#include "common.h"

#define NV 0x10
#define DZ 0x08
#define OF 0x04
#define UF 0x02
#define NX 0x01

.macro FS freg, bits                /* single from bits (boxed by fmv.w.x) */
    li      t0, \bits
    fmv.w.x \freg, t0
.endm
.macro FD freg, bits                /* double (or raw 64-bit register) from bits */
    li      t0, \bits
    fmv.d.x \freg, t0
.endm
.macro CHECK_S freg, bits           /* single result, must be NaN-boxed */
    fmv.x.d t0, \freg
    CHECK   t0, (0xffffffff00000000 | \bits)
.endm
.macro CHECK_D freg, bits
    fmv.x.d t0, \freg
    CHECK   t0, \bits
.endm
.macro FLAGS_CLEAR
    csrwi   fflags, 0
.endm
.macro CHECK_FLAGS value            /* and clear them */
    csrrwi  t0, fflags, 0
    CHECK   t0, \value
.endm

/* fdiv.s 1/3 (or -1/3) with a static rounding mode */
.macro DIV3_S rm, sign, expected
    FS      ft0, (\sign | 0x3f800000)
    FS      ft1, 0x40400000
    fdiv.s  ft2, ft0, ft1, \rm
    CHECK_S ft2, \expected
    CHECK_FLAGS NX
.endm

/* integer result of a conversion and its flags */
.macro CVT op, rm, src_bits, expected, flags
    FD      ft0, \src_bits
    \op     t1, ft0, \rm
    CHECK   t1, \expected
    CHECK_FLAGS \flags
.endm

    .text
main:
    PRINT   "fpu: F/D arithmetic, fflags, rounding modes, NaN-boxing\n"
    li      t0, MSTATUS_FS
    csrs    mstatus, t0

    TEST    1, "fcsr = frm << 5 | fflags; fsrm/fsflags swap"
    li      t0, 0xff
    csrw    fcsr, t0
    CHECK_CSR fflags, 0x1f
    CHECK_CSR frm, 7
    li      t1, 2
    fsrm    t0, t1
    CHECK   t0, 7
    CHECK_CSR fcsr, 0x5f
    fsflagsi t0, 0
    CHECK   t0, 0x1f
    CHECK_CSR fcsr, 0x40
    csrw    fcsr, zero

    TEST    2, "exact single arithmetic raises no flags"
    FS      ft0, 0x3fc00000             /* 1.5 */
    FS      ft1, 0x40100000             /* 2.25 */
    fadd.s  ft2, ft0, ft1
    CHECK_S ft2, 0x40700000             /* 3.75 */
    fsub.s  ft2, ft0, ft1
    CHECK_S ft2, 0xbf400000             /* -0.75 */
    FS      ft3, 0x40400000             /* 3 */
    FS      ft4, 0x3f000000             /* 0.5 */
    fmul.s  ft2, ft3, ft4
    CHECK_S ft2, 0x3fc00000
    CHECK_FLAGS 0

    TEST    3, "static rounding modes on 1/3 and -1/3 (inexact)"
    DIV3_S  rne, 0, 0x3eaaaaab
    DIV3_S  rtz, 0, 0x3eaaaaaa
    DIV3_S  rdn, 0, 0x3eaaaaaa
    DIV3_S  rup, 0, 0x3eaaaaab
    DIV3_S  rmm, 0, 0x3eaaaaab
    DIV3_S  rne, 0x80000000, 0xbeaaaaab
    DIV3_S  rtz, 0x80000000, 0xbeaaaaaa
    DIV3_S  rdn, 0x80000000, 0xbeaaaaab
    DIV3_S  rup, 0x80000000, 0xbeaaaaaa

    TEST    4, "dynamic rounding mode from frm"
    csrwi   frm, 1                      /* RTZ */
    DIV3_S  dyn, 0, 0x3eaaaaaa
    csrwi   frm, 2                      /* RDN */
    DIV3_S  dyn, 0x80000000, 0xbeaaaaab
    csrwi   frm, 0

    TEST    5, "invalid, divide-by-zero, overflow, underflow flags"
    FS      ft0, 0xbf800000
    fsqrt.s ft1, ft0
    CHECK_S ft1, 0x7fc00000             /* canonical NaN */
    CHECK_FLAGS NV
    FS      ft0, 0x3f800000
    FS      ft1, 0
    fdiv.s  ft2, ft0, ft1
    CHECK_S ft2, 0x7f800000
    CHECK_FLAGS DZ
    FS      ft0, 0x7f7fffff             /* FLT_MAX */
    FS      ft1, 0x40000000
    fmul.s  ft2, ft0, ft1
    CHECK_S ft2, 0x7f800000
    CHECK_FLAGS OF | NX
    fmul.s  ft2, ft0, ft1, rtz          /* overflow rounding toward zero: FLT_MAX */
    CHECK_S ft2, 0x7f7fffff
    CHECK_FLAGS OF | NX
    FS      ft0, 0x0da24260             /* 1e-30 */
    fmul.s  ft2, ft0, ft0
    CHECK_S ft2, 0
    CHECK_FLAGS UF | NX
    FS      ft0, 0x7f800000
    FS      ft1, 0xff800000
    fadd.s  ft2, ft0, ft1               /* inf + -inf */
    CHECK_S ft2, 0x7fc00000
    CHECK_FLAGS NV

    TEST    6, "float -> int conversions: rounding, saturation, sign extension"
    FS      ft0, 0x40200000             /* 2.5 */
    fcvt.w.s t1, ft0, rne
    CHECK   t1, 2
    CHECK_FLAGS NX
    fcvt.w.s t1, ft0, rmm
    CHECK   t1, 3
    fcvt.w.s t1, ft0, rup
    CHECK   t1, 3
    FS      ft0, 0xc0200000             /* -2.5 */
    fcvt.w.s t1, ft0, rne
    CHECK   t1, -2
    fcvt.w.s t1, ft0, rdn
    CHECK   t1, -3
    fcvt.w.s t1, ft0, rtz
    CHECK   t1, -2
    CHECK_FLAGS NX
    FS      ft0, 0x501502f9             /* 1e10 */
    fcvt.w.s t1, ft0, rtz
    CHECK   t1, 0x7fffffff
    CHECK_FLAGS NV
    FS      ft0, 0x7fc00000             /* NaN -> largest */
    fcvt.w.s t1, ft0, rtz
    CHECK   t1, 0x7fffffff
    CHECK_FLAGS NV
    FS      ft0, 0xff800000             /* -inf -> smallest */
    fcvt.w.s t1, ft0, rtz
    CHECK   t1, 0xffffffff80000000
    CHECK_FLAGS NV
    FS      ft0, 0xbf800000             /* -1 -> unsigned: 0 */
    fcvt.wu.s t1, ft0, rtz
    CHECK   t1, 0
    CHECK_FLAGS NV
    FS      ft0, 0x4f32d05e             /* 3e9: wu result is sign-extended */
    fcvt.wu.s t1, ft0, rtz
    CHECK   t1, 0xffffffffb2d05e00
    CHECK_FLAGS 0
    CVT     fcvt.l.d, rtz, 0x43e0000000000000, 0x7fffffffffffffff, NV   /* 2^63 */
    CVT     fcvt.l.d, rtz, 0xc3e0000000000000, 0x8000000000000000, 0    /* -2^63 */
    CVT     fcvt.lu.d, rtz, 0x43e0000000000000, 0x8000000000000000, 0
    CVT     fcvt.lu.d, rtz, 0xbff0000000000000, 0, NV

    TEST    7, "int -> float conversions"
    li      t1, 16777217                /* 2^24 + 1 */
    fcvt.s.w ft0, t1
    CHECK_S ft0, 0x4b800000
    CHECK_FLAGS NX
    li      t1, -1
    fcvt.s.l ft0, t1
    CHECK_S ft0, 0xbf800000
    fcvt.d.lu ft0, t1
    CHECK_D ft0, 0x43f0000000000000
    CHECK_FLAGS NX
    li      t1, 0xffffffff80000000
    fcvt.d.w ft0, t1
    CHECK_D ft0, 0xc1e0000000000000
    li      t1, 0x1ffffffff             /* wu ignores the upper 32 bits */
    fcvt.d.wu ft0, t1
    CHECK_D ft0, 0x41efffffffe00000
    CHECK_FLAGS 0

    TEST    8, "double arithmetic, sqrt, and precision conversions"
    FD      ft0, 0x3fb999999999999a     /* 0.1 */
    FD      ft1, 0x3fc999999999999a     /* 0.2 */
    fadd.d  ft2, ft0, ft1
    CHECK_D ft2, 0x3fd3333333333334
    CHECK_FLAGS NX
    FD      ft0, 0x4000000000000000
    fsqrt.d ft1, ft0
    CHECK_D ft1, 0x3ff6a09e667f3bcd
    CHECK_FLAGS NX
    FD      ft0, 0x3fd5555555555555     /* 1/3 */
    fcvt.s.d ft1, ft0
    CHECK_S ft1, 0x3eaaaaab
    CHECK_FLAGS NX
    fcvt.d.s ft2, ft1
    CHECK_D ft2, 0x3fd5555560000000
    CHECK_FLAGS 0

    TEST    9, "fused multiply-add rounds once"
    FD      ft0, 0x3ff0000000000001     /* 1 + 2^-52 */
    FD      ft1, 0x3feffffffffffffe     /* 1 - 2^-52 */
    FD      ft2, 0xbff0000000000000     /* -1 */
    fmadd.d ft3, ft0, ft1, ft2
    CHECK_D ft3, 0xb970000000000000     /* -2^-104 exactly */
    CHECK_FLAGS 0
    fmul.d  ft4, ft0, ft1               /* separately: rounds to 1 */
    fadd.d  ft4, ft4, ft2
    CHECK_D ft4, 0
    CHECK_FLAGS NX
    FD      ft5, 0x3ff0000000000000     /* 1 */
    fnmsub.d ft3, ft0, ft1, ft5         /* -(a*b) + c = 2^-104 */
    CHECK_D ft3, 0x3970000000000000
    FS      ft0, 0x40400000
    FS      ft1, 0x3f000000
    FS      ft2, 0x3f800000
    fmsub.s ft3, ft0, ft1, ft2          /* 3 * 0.5 - 1 */
    CHECK_S ft3, 0x3f000000
    fnmadd.s ft3, ft0, ft1, ft2         /* -(3 * 0.5) - 1 */
    CHECK_S ft3, 0xc0200000
    CHECK_FLAGS 0

    TEST    10, "min/max and compares with NaN and signed zero"
    FS      ft0, 0x7fc00000             /* qNaN */
    FS      ft1, 0x3f800000             /* 1 */
    FS      ft2, 0x7f800001             /* sNaN */
    fmin.s  ft3, ft0, ft1
    CHECK_S ft3, 0x3f800000
    CHECK_FLAGS 0
    fmax.s  ft3, ft2, ft1
    CHECK_S ft3, 0x3f800000
    CHECK_FLAGS NV
    fmin.s  ft3, ft0, ft2
    CHECK_S ft3, 0x7fc00000
    FS      ft4, 0x80000000             /* -0 */
    FS      ft5, 0
    fmin.s  ft3, ft5, ft4
    CHECK_S ft3, 0x80000000
    fmax.s  ft3, ft4, ft5
    CHECK_S ft3, 0
    CHECK_FLAGS NV
    feq.s   t1, ft0, ft0                /* quiet compare: no flag for qNaN */
    CHECK   t1, 0
    CHECK_FLAGS 0
    flt.s   t1, ft0, ft1                /* signaling compare */
    CHECK   t1, 0
    CHECK_FLAGS NV
    feq.s   t1, ft2, ft1
    CHECK   t1, 0
    CHECK_FLAGS NV
    feq.s   t1, ft4, ft5                /* -0 == +0 */
    CHECK   t1, 1
    fle.d   t1, ft4, ft4                /* unboxed-looking doubles are fine */
    CHECK   t1, 0                       /* (0xffffffff80000000 is a double NaN) */
    CHECK_FLAGS NV

    TEST    11, "fclass and sign injection"
    FD      ft0, 0xfff0000000000000
    fclass.d t1, ft0
    CHECK   t1, 0x001
    FD      ft0, 0x8000000000000001
    fclass.d t1, ft0
    CHECK   t1, 0x004
    FD      ft0, 0x0000000000000000
    fclass.d t1, ft0
    CHECK   t1, 0x010
    FD      ft0, 0x7ff0000000000001
    fclass.d t1, ft0
    CHECK   t1, 0x100
    FD      ft0, 0x7ff8000000000000
    fclass.d t1, ft0
    CHECK   t1, 0x200
    FS      ft0, 0x3f800000
    fclass.s t1, ft0
    CHECK   t1, 0x040
    FD      ft0, 0x3ff0000000000000
    FD      ft1, 0x8000000000000000
    fsgnj.d ft2, ft0, ft1
    CHECK_D ft2, 0xbff0000000000000
    fsgnjn.d ft2, ft2, ft1
    CHECK_D ft2, 0x3ff0000000000000
    fsgnjx.d ft2, ft1, ft1
    CHECK_D ft2, 0
    CHECK_FLAGS 0

    TEST    12, "NaN-boxing: flw and fmv.w.x box; fmv.x.w sign-extends"
    la      s0, fdata
    flw     ft0, 0(s0)
    CHECK_S ft0, 0xbf800000
    fmv.x.w t1, ft0
    CHECK   t1, 0xffffffffbf800000
    FS      ft1, 0x40000000
    fadd.s  ft2, ft0, ft1
    CHECK_S ft2, 0x3f800000

    TEST    13, "NaN-boxing: an unboxed single operand is the canonical NaN"
    FD      ft0, 0x000000003f800000     /* upper half not all ones */
    FD      ft1, 0xfffffffe3f800000     /* nearly boxed: still not */
    FS      ft2, 0x3f800000
    fadd.s  ft3, ft0, ft2
    CHECK_S ft3, 0x7fc00000
    fadd.s  ft3, ft1, ft2
    CHECK_S ft3, 0x7fc00000
    CHECK_FLAGS 0                       /* canonical NaN is quiet */
    fsgnj.s ft3, ft0, ft2               /* sign injection too */
    CHECK_S ft3, 0x7fc00000
    fclass.s t1, ft0
    CHECK   t1, 0x200
    fcvt.d.s ft3, ft1
    CHECK_D ft3, 0x7ff8000000000000
    feq.s   t1, ft0, ft0
    CHECK   t1, 0
    CHECK_FLAGS 0
    fmv.x.w t1, ft0                     /* moves and stores take the low bits */
    CHECK   t1, 0x3f800000
    la      s0, fdata
    fsw     ft1, 4(s0)
    lwu     t1, 4(s0)
    CHECK   t1, 0x3f800000
    fsd     ft1, 8(s0)
    ld      t1, 8(s0)
    CHECK   t1, 0xfffffffe3f800000

    j       pass

    .data
    .balign 8
fdata:  .word 0xbf800000, 0
        .dword 0
