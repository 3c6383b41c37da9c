namespace HostVM.Machine.Devices;

/// <summary>
/// What a snapshot keeps of the PLIC. Bit arrays hold one bit per source id (32 per word); the enable
/// array holds <c>words</c> entries per context, context after context.
/// </summary>
public sealed record PlicState(
    uint[] Priority,
    uint[] Level,
    uint[] Pending,
    uint[] InService,
    uint[] Enable,
    uint[] Threshold)
{
    public PlicState DeepCopy() => new(
        (uint[])Priority.Clone(),
        (uint[])Level.Clone(),
        (uint[])Pending.Clone(),
        (uint[])InService.Clone(),
        (uint[])Enable.Clone(),
        (uint[])Threshold.Clone());
}
