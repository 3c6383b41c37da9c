using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>
/// Source-generated JSON for the control API: no reflection at start-up (the VMM's start time is a
/// figure we measure), and unknown fields are refused, as Firecracker refuses them.
/// </summary>
[JsonSourceGenerationOptions(
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Disallow,
    AllowTrailingCommas = false,
    WriteIndented = false)]
[JsonSerializable(typeof(BootSource))]
[JsonSerializable(typeof(MachineConfig))]
[JsonSerializable(typeof(Drive))]
[JsonSerializable(typeof(BitmapRequest))]
[JsonSerializable(typeof(DriveJobRequest))]
[JsonSerializable(typeof(DriveJobInfo))]
[JsonSerializable(typeof(IReadOnlyList<DirtyBitmap>))]
[JsonSerializable(typeof(IReadOnlyList<BitmapExtent>))]
[JsonSerializable(typeof(NetworkInterface))]
[JsonSerializable(typeof(InstanceActionInfo))]
[JsonSerializable(typeof(InstanceInfo))]
[JsonSerializable(typeof(VmState))]
[JsonSerializable(typeof(Balloon))]
[JsonSerializable(typeof(BalloonStatsUpdate))]
[JsonSerializable(typeof(BalloonStats))]
[JsonSerializable(typeof(Metrics))]
[JsonSerializable(typeof(Logger))]
[JsonSerializable(typeof(EntropyDevice))]
[JsonSerializable(typeof(SerialDevice))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(VmmVersion))]
[JsonSerializable(typeof(FullVmConfiguration))]
[JsonSerializable(typeof(VmmStatistics))]
[JsonSerializable(typeof(VmmExitReport))]
[JsonSerializable(typeof(JailPlan))]
public sealed partial class VmmJsonContext : JsonSerializerContext
{
}
