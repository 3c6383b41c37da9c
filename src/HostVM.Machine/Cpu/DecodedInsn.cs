using System.Runtime.InteropServices;

namespace HostVM.Machine.Cpu;

/// <summary>
/// One decoded instruction: 16 bytes, laid out for the interpreter (and later the JIT).
/// Register writes to x0 are redirected to the sink register <see cref="HartState.ZeroSink"/>, so
/// the interpreter never needs to test rd for zero.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct DecodedInsn
{
    public Op Op;
    public byte Rd;
    public byte Rs1;
    public byte Rs2;
    public byte Rs3;
    /// <summary>2 or 4.</summary>
    public byte Length;
    /// <summary>The rm field of FP computations (7 = dynamic, from frm).</summary>
    public byte Rm;
    /// <summary>Immediate, CSR number for CSR ops, or the raw instruction bits for illegal ones.</summary>
    public long Imm;
}
