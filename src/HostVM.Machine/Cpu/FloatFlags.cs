namespace HostVM.Machine.Cpu;

/// <summary>
/// The RISC-V floating-point exception flags, laid out exactly as the <c>fflags</c> CSR
/// (bits 0..4 of <c>fcsr</c>). Operations OR these into an accumulator; nothing clears them
/// except software writing the CSR.
/// </summary>
[Flags]
public enum FloatFlags : uint
{
    None = 0,

    /// <summary>NX: the rounded result differs from the exact result.</summary>
    Inexact = 1,

    /// <summary>UF: the result is tiny (detected after rounding) and inexact.</summary>
    Underflow = 2,

    /// <summary>OF: the rounded result's magnitude exceeds the largest finite number.</summary>
    Overflow = 4,

    /// <summary>DZ: a finite nonzero number was divided by zero.</summary>
    DivideByZero = 8,

    /// <summary>NV: invalid operation (signaling NaN input, inf - inf, 0 * inf, out-of-range conversion...).</summary>
    Invalid = 16,
}
