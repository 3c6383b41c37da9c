using System.Text.Json.Serialization;
using HostVM.Host.Inventory;

namespace HostVM.Host.Api;

/// <summary>The daemon's JSON: snake_case, unknown fields refused, no reflection.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(VmRecord))]
[JsonSerializable(typeof(List<VmRecord>))]
[JsonSerializable(typeof(ImageRecord))]
[JsonSerializable(typeof(List<ImageRecord>))]
[JsonSerializable(typeof(NetworkRecord))]
[JsonSerializable(typeof(NetworkView))]
[JsonSerializable(typeof(List<NetworkView>))]
[JsonSerializable(typeof(AddForwardRequest))]
[JsonSerializable(typeof(ForwardView))]
[JsonSerializable(typeof(List<ForwardView>))]
[JsonSerializable(typeof(List<EventRecord>))]
[JsonSerializable(typeof(EventRecord))]
[JsonSerializable(typeof(Metrics.VmStats))]
[JsonSerializable(typeof(Metrics.HostStats))]
[JsonSerializable(typeof(IReadOnlyList<Metrics.StatsSample>))]
[JsonSerializable(typeof(Vmm.Api.BitmapRequest))]
[JsonSerializable(typeof(DiskJobView))]
[JsonSerializable(typeof(StartDiskJobRequest))]
[JsonSerializable(typeof(IReadOnlyList<Vmm.Api.DirtyBitmap>))]
[JsonSerializable(typeof(IReadOnlyList<Vmm.Api.BitmapExtent>))]
[JsonSerializable(typeof(PoolRecord))]
[JsonSerializable(typeof(VolumeRecord))]
[JsonSerializable(typeof(PoolView))]
[JsonSerializable(typeof(List<PoolView>))]
[JsonSerializable(typeof(VolumeView))]
[JsonSerializable(typeof(List<VolumeView>))]
[JsonSerializable(typeof(CreatePoolRequest))]
[JsonSerializable(typeof(CreateVolumeRequest))]
[JsonSerializable(typeof(ResizeVolumeRequest))]
[JsonSerializable(typeof(ServeVolumeRequest))]
[JsonSerializable(typeof(VolumeServing))]
[JsonSerializable(typeof(CreateVmRequest))]
[JsonSerializable(typeof(UpdateVmRequest))]
[JsonSerializable(typeof(StopVmRequest))]
[JsonSerializable(typeof(CreateNetworkRequest))]
[JsonSerializable(typeof(SetEgressRequest))]
[JsonSerializable(typeof(ImportImageRequest))]
[JsonSerializable(typeof(HostInfo))]
[JsonSerializable(typeof(Security.TokenRecord))]
[JsonSerializable(typeof(List<Security.TokenRecord>))]
[JsonSerializable(typeof(CreateTokenRequest))]
[JsonSerializable(typeof(CreatedToken))]
[JsonSerializable(typeof(ProjectRecord))]
[JsonSerializable(typeof(ProjectView))]
[JsonSerializable(typeof(List<ProjectView>))]
[JsonSerializable(typeof(CreateProjectRequest))]
[JsonSerializable(typeof(UpdateProjectRequest))]
[JsonSerializable(typeof(List<AuditRecord>))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails))]
[JsonSerializable(typeof(Dictionary<string, string[]>))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, string[]>))]
public sealed partial class HostJsonContext : JsonSerializerContext
{
}
