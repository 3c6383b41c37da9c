using System.Text.Json;
using System.Text.Json.Serialization;
using HostVM.Host.Metrics;

namespace HostVM.Cli.Api;

/// <summary>The daemon's JSON (snake_case), without reflection. Nulls are left out of requests: the daemon's defaults apply.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Problem))]
[JsonSerializable(typeof(HostInfo))]
[JsonSerializable(typeof(Vm))]
[JsonSerializable(typeof(List<Vm>))]
[JsonSerializable(typeof(Image))]
[JsonSerializable(typeof(List<Image>))]
[JsonSerializable(typeof(Network))]
[JsonSerializable(typeof(List<Network>))]
[JsonSerializable(typeof(List<VmEvent>))]
[JsonSerializable(typeof(VmEvent))]
[JsonSerializable(typeof(VmStats))]
[JsonSerializable(typeof(List<StatsSample>))]
[JsonSerializable(typeof(HostStats))]
[JsonSerializable(typeof(CreateVmRequest))]
[JsonSerializable(typeof(StopVmRequest))]
[JsonSerializable(typeof(UpdateVmRequest))]
[JsonSerializable(typeof(CreateNetworkRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.SetEgressRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.AddForwardRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.ForwardView))]
[JsonSerializable(typeof(List<HostVM.Host.Api.ForwardView>))]
[JsonSerializable(typeof(HostVM.Host.Api.ImportImageRequest))]
[JsonSerializable(typeof(HostVM.Vmm.Api.BitmapRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.DiskJobView))]
[JsonSerializable(typeof(HostVM.Host.Api.StartDiskJobRequest))]
[JsonSerializable(typeof(List<HostVM.Vmm.Api.DirtyBitmap>))]
[JsonSerializable(typeof(List<HostVM.Vmm.Api.BitmapExtent>))]
[JsonSerializable(typeof(HostVM.Host.Api.PoolView))]
[JsonSerializable(typeof(List<HostVM.Host.Api.PoolView>))]
[JsonSerializable(typeof(HostVM.Host.Api.VolumeView))]
[JsonSerializable(typeof(List<HostVM.Host.Api.VolumeView>))]
[JsonSerializable(typeof(HostVM.Host.Api.CreatePoolRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.CreateVolumeRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.ResizeVolumeRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.ServeVolumeRequest))]
[JsonSerializable(typeof(HostVM.Host.Api.VolumeServing))]
[JsonSerializable(typeof(ImageMetadata))]
[JsonSerializable(typeof(CliConfig))]
[JsonSerializable(typeof(Token))]
[JsonSerializable(typeof(List<Token>))]
[JsonSerializable(typeof(CreatedToken))]
[JsonSerializable(typeof(CreateTokenRequest))]
[JsonSerializable(typeof(Project))]
[JsonSerializable(typeof(List<Project>))]
[JsonSerializable(typeof(CreateProjectRequest))]
[JsonSerializable(typeof(UpdateProjectRequest))]
[JsonSerializable(typeof(List<AuditEntry>))]
[JsonSerializable(typeof(JsonElement))]
public sealed partial class ApiJsonContext : JsonSerializerContext
{
}
