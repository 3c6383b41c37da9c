namespace HostVM.Machine.Devices;

/// <summary>
/// What a snapshot keeps of the CLINT: each hart's msip bit. (mtimecmp lives in the hart and mtime in
/// <see cref="MachineClock"/>; both are saved with them.)
/// </summary>
public sealed record ClintState(bool[] SoftwarePending)
{
    public ClintState DeepCopy() => new((bool[])SoftwarePending.Clone());
}
