namespace HostVM.Machine.Cpu;

/// <summary>
/// The RISC-V rounding modes, numbered as the <c>frm</c> field and the instructions' <c>rm</c> field.
/// Encodings 5 and 6 are reserved and 7 means "dynamic" (use <c>frm</c>); resolving those is the
/// CPU's job, so <see cref="SoftFloat"/> only ever sees 0..4 (anything else is treated as
/// <see cref="NearestEven"/> rather than throwing).
/// </summary>
public enum RoundingMode : byte
{
    /// <summary>RNE: round to nearest, ties to even.</summary>
    NearestEven = 0,

    /// <summary>RTZ: round toward zero.</summary>
    TowardZero = 1,

    /// <summary>RDN: round down, toward negative infinity.</summary>
    Down = 2,

    /// <summary>RUP: round up, toward positive infinity.</summary>
    Up = 3,

    /// <summary>RMM: round to nearest, ties away from zero (to maximum magnitude).</summary>
    NearestMaxMagnitude = 4,
}
