namespace HostVM.Networking.Switch;

/// <summary>A snapshot of a <see cref="SwitchUplink"/>'s counters, in frames and bytes each way.</summary>
/// <param name="FramesFromSwitch">Frames the switch delivered to the uplink's port (guests' frames for it, and floods).</param>
/// <param name="FramesToSwitch">Frames the uplinked port (e.g. the NAT) sent onto the switch.</param>
/// <param name="SwitchDroppedFrames">Frames the uplink's switch port dropped (malformed, or a guest's queue stayed full).</param>
public sealed record SwitchUplinkStatistics(
    long FramesFromSwitch,
    long BytesFromSwitch,
    long FramesToSwitch,
    long BytesToSwitch,
    long SwitchDroppedFrames);
