using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>GET /version (Firecracker names the field after itself; clients read it).</summary>
public sealed record VmmVersion([property: JsonPropertyName("firecracker_version")] string FirecrackerVersion);
