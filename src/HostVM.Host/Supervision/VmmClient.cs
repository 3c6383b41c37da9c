using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Serialization.Metadata;
using HostVM.Vmm.Api;

namespace HostVM.Host.Supervision;

/// <summary>The daemon's side of one VMM's control API (HTTP on its Unix socket).</summary>
public sealed class VmmClient : IDisposable
{
    private readonly HttpClient _http;

    public VmmClient(string socketPath)
    {
        SocketPath = socketPath;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        {
            BaseAddress = new Uri("http://localhost"),
            Timeout = TimeSpan.FromSeconds(10),
        };
    }

    public string SocketPath { get; }

    private static VmmJsonContext Json => VmmJsonContext.Default;

    public async Task<InstanceInfo> DescribeAsync() =>
        (await _http.GetFromJsonAsync("/", Json.InstanceInfo).ConfigureAwait(false))!;

    public Task<string> StatisticsAsync(CancellationToken cancellationToken = default) => _http.GetStringAsync("/hostvm/stats", cancellationToken);

    public Task SetStateAsync(string state) => SendAsync(HttpMethod.Patch, "/vm", new VmState { State = state }, Json.VmState);

    public Task PressPowerButtonAsync() => SendAsync(HttpMethod.Put, "/actions", new InstanceActionInfo { ActionType = "SendCtrlAltDel" }, Json.InstanceActionInfo);

    public Task SetCpuCapAsync(int percent) => SendAsync(HttpMethod.Patch, "/machine-config", new MachineConfig { CpuCapPercent = percent }, Json.MachineConfig);

    public Task PatchDriveAsync(Drive drive) => SendAsync(HttpMethod.Patch, $"/drives/{drive.DriveId}", drive, Json.Drive);

    public Task PatchNetworkInterfaceAsync(NetworkInterface nic) =>
        SendAsync(HttpMethod.Patch, $"/network-interfaces/{nic.IfaceId}", nic, Json.NetworkInterface);

    public Task SetBalloonAsync(long mib) => SendAsync(HttpMethod.Patch, "/balloon", new Balloon { AmountMib = mib }, Json.Balloon);

    public Task<IReadOnlyList<DirtyBitmap>> BitmapsAsync(string driveId) => GetAsync($"/hostvm/drives/{Uri.EscapeDataString(driveId)}/bitmaps", Json.IReadOnlyListDirtyBitmap);

    public Task ChangeBitmapsAsync(string driveId, BitmapRequest request) =>
        SendAsync(HttpMethod.Put, $"/hostvm/drives/{Uri.EscapeDataString(driveId)}/bitmaps", request, Json.BitmapRequest);

    public Task<DriveJobInfo> DriveJobAsync(string driveId) => GetAsync($"/hostvm/drives/{Uri.EscapeDataString(driveId)}/job", Json.DriveJobInfo);

    public async Task<DriveJobInfo> RunDriveJobAsync(string driveId, string action)
    {
        string path = $"/hostvm/drives/{Uri.EscapeDataString(driveId)}/job";
        using var response = await _http.PutAsJsonAsync(path, new DriveJobRequest { Action = action }, Json.DriveJobRequest).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var fault = await response.Content.ReadFromJsonAsync(Json.ApiError).ConfigureAwait(false);
            throw new VmmRequestException($"the VMM refused {action}: {fault?.FaultMessage ?? response.StatusCode.ToString()}");
        }

        return (await response.Content.ReadFromJsonAsync(Json.DriveJobInfo).ConfigureAwait(false))!;
    }

    public Task<IReadOnlyList<BitmapExtent>> BitmapExtentsAsync(string driveId, string name) =>
        GetAsync($"/hostvm/drives/{Uri.EscapeDataString(driveId)}/bitmaps/{Uri.EscapeDataString(name)}/extents", Json.IReadOnlyListBitmapExtent);

    private async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type)
    {
        using var response = await _http.GetAsync(path).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var fault = await response.Content.ReadFromJsonAsync(Json.ApiError).ConfigureAwait(false);
            throw new VmmRequestException($"the VMM refused GET {path}: {fault?.FaultMessage ?? response.StatusCode.ToString()}");
        }

        return (await response.Content.ReadFromJsonAsync(type).ConfigureAwait(false))!;
    }

    private async Task SendAsync<T>(HttpMethod method, string path, T body, JsonTypeInfo<T> type)
    {
        using var request = new HttpRequestMessage(method, path) { Content = JsonContent.Create(body, type) };
        using var response = await _http.SendAsync(request).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var fault = await response.Content.ReadFromJsonAsync(Json.ApiError).ConfigureAwait(false);
            throw new VmmRequestException($"the VMM refused {method} {path}: {fault?.FaultMessage ?? response.StatusCode.ToString()}");
        }
    }

    public void Dispose() => _http.Dispose();
}
