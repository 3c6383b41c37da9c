using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using HostVM.Host.Api;
using HostVM.Host.Metrics;

namespace HostVM.Cli.Api;

/// <summary>
/// The daemon's REST API (docs/host-api.md), one method per endpoint. Answers come back as typed records
/// together with the JSON the daemon sent; an error status becomes a <see cref="DaemonException"/> carrying
/// the problem+json, a failed connection a <see cref="DaemonUnreachableException"/>, an untrusted certificate a
/// <see cref="DaemonCertificateException"/>. Over https the certificate is pinned when the connection has a fingerprint.
/// </summary>
public sealed class DaemonClient : IDisposable
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private static readonly ApiJsonContext Json = ApiJsonContext.Default;

    private readonly HttpMessageHandler _handler;
    private readonly HttpClient _http;
    private readonly ServerCertificateCheck _certificate;
    private readonly string? _token;

    /// <param name="address">Where the daemon is.</param>
    /// <param name="handler">The transport; tests pass a fake. Null: a real connection (TCP, or the Unix socket).</param>
    public DaemonClient(DaemonAddress address, HttpMessageHandler? handler = null)
        : this(new DaemonConnection(address), handler)
    {
    }

    /// <param name="connection">Where the daemon is, the token to send and the fingerprint to pin.</param>
    /// <param name="handler">The transport; tests pass a fake. Null: a real connection (TCP, or the Unix socket).</param>
    public DaemonClient(DaemonConnection connection, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Address = connection.Address;
        _token = connection.Token;
        _certificate = new ServerCertificateCheck(connection.Fingerprint);
        _handler = handler ?? CreateHandler(connection.Address, _certificate);
        // No overall timeout: uploads and graceful stops take as long as they take; connecting is bounded.
        _http = new HttpClient(_handler, disposeHandler: false) { BaseAddress = Address.BaseUri, Timeout = Timeout.InfiniteTimeSpan };
        if (_token is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        }
    }

    public DaemonAddress Address { get; }

    /// <summary>The SHA-256 fingerprint of the certificate the daemon presented (null before a request, or without TLS).</summary>
    public string? ServerFingerprint => _certificate.Seen;

    /// <param name="address">Where the daemon is.</param>
    /// <param name="certificate">Decides whether an https daemon's certificate is trusted; null: the system's CAs.</param>
    public static SocketsHttpHandler CreateHandler(DaemonAddress address, ServerCertificateCheck? certificate = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        var handler = new SocketsHttpHandler { ConnectTimeout = ConnectTimeout, UseProxy = false };
        if (certificate is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = certificate.Validate;
        }

        if (address.SocketPath is { } path)
        {
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }

        return handler;
    }

    // Host

    public Task<DaemonResponse<HostInfo>> GetHostAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/host", null, Json.HostInfo, cancellationToken);

    // Images

    /// <summary>Uploads an image's files as multipart/form-data; <paramref name="progress"/> hears how much of each file was sent.</summary>
    public async Task<DaemonResponse<Image>> ImportImageAsync(
        ImageMetadata metadata, IReadOnlyList<ImageFile> files, Action<ImageFile, long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(files);
        using var form = new MultipartFormDataContent();
        form.Add(JsonContent(metadata, Json.ImageMetadata), "metadata");
        foreach (var file in files)
        {
            var stream = new ProgressStream(File.OpenRead(file.Path), sent => progress?.Invoke(file, sent));
            var part = new StreamContent(stream, 1 << 20);
            part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(part, file.Part, Path.GetFileName(file.Path));
        }

        return await SendAsync(HttpMethod.Post, "v1/images", form, Json.Image, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Makes an image of a stopped VM (its boot files and its disk, flattened).</summary>
    public Task<DaemonResponse<Image>> CreateImageFromVmAsync(string name, string vm, string? bootArgs, string? description, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/images", JsonContent(new ImportImageRequest { Name = name, FromVm = vm, BootArgs = bootArgs, Description = description }, Json.ImportImageRequest),
            Json.Image, cancellationToken);

    public Task<DaemonResponse<List<Image>>> ListImagesAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/images", null, Json.ListImage, cancellationToken);

    public Task<DaemonResponse<Image>> GetImageAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"v1/images/{Escape(name)}", null, Json.Image, cancellationToken);

    public Task DeleteImageAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"v1/images/{Escape(name)}", null, cancellationToken);

    // VMs

    public Task<DaemonResponse<Vm>> CreateVmAsync(CreateVmRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/vms", JsonContent(request, Json.CreateVmRequest), Json.Vm, cancellationToken);

    public Task<DaemonResponse<List<Vm>>> ListVmsAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/vms", null, Json.ListVm, cancellationToken);

    public Task<DaemonResponse<Vm>> GetVmAsync(string vm, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, VmPath(vm), null, Json.Vm, cancellationToken);

    public Task<DaemonResponse<Vm>> StartVmAsync(string vm, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, VmPath(vm) + "/start", null, Json.Vm, cancellationToken);

    public Task<DaemonResponse<Vm>> StopVmAsync(string vm, StopVmRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, VmPath(vm) + "/stop", JsonContent(request, Json.StopVmRequest), Json.Vm, cancellationToken);

    public Task<DaemonResponse<Vm>> RestartVmAsync(string vm, StopVmRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, VmPath(vm) + "/restart", JsonContent(request, Json.StopVmRequest), Json.Vm, cancellationToken);

    public Task<DaemonResponse<Vm>> PauseVmAsync(string vm, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, VmPath(vm) + "/pause", null, Json.Vm, cancellationToken);

    public Task<DaemonResponse<Vm>> ResumeVmAsync(string vm, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, VmPath(vm) + "/resume", null, Json.Vm, cancellationToken);

    public Task<DaemonResponse<Vm>> UpdateVmAsync(string vm, UpdateVmRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Patch, VmPath(vm), JsonContent(request, Json.UpdateVmRequest), Json.Vm, cancellationToken);

    public Task DeleteVmAsync(string vm, bool force, bool purge, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, WithQuery(VmPath(vm), ("force", force ? "true" : null), ("purge", purge ? "true" : null)), null, cancellationToken);

    /// <summary>The VM's counters now and its rates (MIPS, CPU %, disk and NIC per second).</summary>
    public Task<DaemonResponse<VmStats>> GetVmStatsAsync(string vm, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, VmPath(vm) + "/stats", null, Json.VmStats, cancellationToken);

    /// <summary>The daemon's samples of the VM over the last hour (or since a time), oldest first.</summary>
    public Task<DaemonResponse<List<StatsSample>>> GetVmStatsHistoryAsync(string vm, DateTimeOffset? since = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, WithQuery(VmPath(vm) + "/stats/history", ("since", since?.ToString("O", System.Globalization.CultureInfo.InvariantCulture))), null, Json.ListStatsSample, cancellationToken);

    /// <summary>Every VM's stats line, their totals and the host's load and memory.</summary>
    public Task<DaemonResponse<HostStats>> GetHostStatsAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/host/stats", null, Json.HostStats, cancellationToken);

    /// <summary>Attaches to the VM's serial console: binary frames carry its bytes both ways (a watcher only reads).</summary>
    public async Task<WebSocket> OpenConsoleAsync(string vm, bool watch = false, int? replayBytes = null, CancellationToken cancellationToken = default)
    {
        var http = new Uri(Address.BaseUri, WithQuery(VmPath(vm) + "/console",
            ("mode", watch ? "watch" : "write"), ("replay", replayBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        var ws = new UriBuilder(http) { Scheme = http.Scheme == "https" ? "wss" : "ws" }.Uri;
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (_token is not null)
        {
            // The handshake goes through the same handler (so the same certificate pin), but not through
            // HttpClient's default headers.
            socket.Options.SetRequestHeader("Authorization", $"Bearer {_token}");
        }

        try
        {
            using var invoker = new HttpMessageInvoker(_handler, disposeHandler: false);
            await socket.ConnectAsync(ws, invoker, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (WebSocketException) when (socket.HttpStatusCode != 0 && socket.HttpStatusCode != HttpStatusCode.SwitchingProtocols)
        {
            socket.Dispose();
            int status = (int)socket.HttpStatusCode;
            throw new DaemonException(status, null, $"the daemon refused the console of '{vm}' ({status} {socket.HttpStatusCode}).");
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException && CertificateRefusal(e) is { } refusal)
        {
            socket.Dispose();
            throw refusal;
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException && Unreachable(e) is { } reason)
        {
            socket.Dispose();
            throw new DaemonUnreachableException(Address, reason, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // Networks

    public Task<DaemonResponse<Network>> CreateNetworkAsync(CreateNetworkRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/networks", JsonContent(request, Json.CreateNetworkRequest), Json.Network, cancellationToken);

    public Task<DaemonResponse<List<Network>>> ListNetworksAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/networks", null, Json.ListNetwork, cancellationToken);

    public Task<DaemonResponse<Network>> GetNetworkAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"v1/networks/{Escape(name)}", null, Json.Network, cancellationToken);

    public Task<DaemonResponse<Network>> SetNetworkEgressAsync(string name, IReadOnlyList<string> allow, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, $"v1/networks/{Escape(name)}/egress", JsonContent(new HostVM.Host.Api.SetEgressRequest { Allow = allow }, Json.SetEgressRequest), Json.Network, cancellationToken);

    public Task DeleteNetworkAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"v1/networks/{Escape(name)}", null, cancellationToken);

    public Task<DaemonResponse<HostVM.Host.Api.ForwardView>> AddForwardAsync(string network, HostVM.Host.Api.AddForwardRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"v1/networks/{Escape(network)}/forwards", JsonContent(request, Json.AddForwardRequest), Json.ForwardView, cancellationToken);

    public Task<DaemonResponse<List<HostVM.Host.Api.ForwardView>>> ListForwardsAsync(string network, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"v1/networks/{Escape(network)}/forwards", null, Json.ListForwardView, cancellationToken);

    public Task RemoveForwardAsync(string network, string protocol, int hostPort, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, string.Create(CultureInfo.InvariantCulture, $"v1/networks/{Escape(network)}/forwards/{Escape(protocol)}/{hostPort}"), null, cancellationToken);

    // Dirty bitmaps of a VM's disks

    public Task<DaemonResponse<List<HostVM.Vmm.Api.DirtyBitmap>>> ListBitmapsAsync(string vm, string disk, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"{VmPath(vm)}/disks/{Escape(disk)}/bitmaps", null, Json.ListDirtyBitmap, cancellationToken);

    public Task ChangeBitmapsAsync(string vm, string disk, HostVM.Vmm.Api.BitmapRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, $"{VmPath(vm)}/disks/{Escape(disk)}/bitmaps", JsonContent(request, Json.BitmapRequest), cancellationToken);

    public Task<DaemonResponse<HostVM.Host.Api.DiskJobView>> StartDiskJobAsync(string vm, string disk, string type, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"{VmPath(vm)}/disks/{Escape(disk)}/job", JsonContent(new HostVM.Host.Api.StartDiskJobRequest { Type = type }, Json.StartDiskJobRequest), Json.DiskJobView, cancellationToken);

    public Task<DaemonResponse<HostVM.Host.Api.DiskJobView>> DiskJobAsync(string vm, string disk, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"{VmPath(vm)}/disks/{Escape(disk)}/job", null, Json.DiskJobView, cancellationToken);

    public Task<DaemonResponse<HostVM.Host.Api.DiskJobView>> CancelDiskJobAsync(string vm, string disk, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"{VmPath(vm)}/disks/{Escape(disk)}/job", null, Json.DiskJobView, cancellationToken);

    public Task<DaemonResponse<List<HostVM.Vmm.Api.BitmapExtent>>> BitmapExtentsAsync(string vm, string disk, string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"{VmPath(vm)}/disks/{Escape(disk)}/bitmaps/{Escape(name)}/extents", null, Json.ListBitmapExtent, cancellationToken);

    // Pools and volumes

    public Task<DaemonResponse<PoolView>> CreatePoolAsync(CreatePoolRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/pools", JsonContent(request, Json.CreatePoolRequest), Json.PoolView, cancellationToken);

    public Task<DaemonResponse<List<PoolView>>> ListPoolsAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/pools", null, Json.ListPoolView, cancellationToken);

    public Task<DaemonResponse<PoolView>> GetPoolAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"v1/pools/{Escape(name)}", null, Json.PoolView, cancellationToken);

    public Task DeletePoolAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"v1/pools/{Escape(name)}", null, cancellationToken);

    public Task<DaemonResponse<VolumeView>> CreateVolumeAsync(CreateVolumeRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/volumes", JsonContent(request, Json.CreateVolumeRequest), Json.VolumeView, cancellationToken);

    public Task<DaemonResponse<List<VolumeView>>> ListVolumesAsync(string? pool = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, WithQuery("v1/volumes", ("pool", pool)), null, Json.ListVolumeView, cancellationToken);

    public Task<DaemonResponse<VolumeView>> GetVolumeAsync(string pool, string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, VolumePath(pool, name), null, Json.VolumeView, cancellationToken);

    public Task<DaemonResponse<VolumeView>> ResizeVolumeAsync(string pool, string name, long sizeBytes, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Patch, VolumePath(pool, name), JsonContent(new ResizeVolumeRequest { SizeBytes = sizeBytes }, Json.ResizeVolumeRequest), Json.VolumeView, cancellationToken);

    public Task DeleteVolumeAsync(string pool, string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, VolumePath(pool, name), null, cancellationToken);

    /// <summary>Uploads <paramref name="length"/> bytes of raw disk content as a new volume stored in <paramref name="format"/>.</summary>
    public Task<DaemonResponse<VolumeView>> ImportVolumeAsync(string pool, string name, string? format, string? project, Stream content, long length, CancellationToken cancellationToken = default)
    {
        var body = new StreamContent(content, 1 << 20);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        body.Headers.ContentLength = length;
        return SendAsync(HttpMethod.Put, WithQuery(VolumePath(pool, name) + "/content", ("format", format), ("project", project)), body, Json.VolumeView, cancellationToken);
    }

    /// <summary>Reads a volume's raw content: <paramref name="consume"/> gets the stream and its length.</summary>
    public async Task ExportVolumeAsync(string pool, string name, Func<Stream, long, Task> consume, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(consume);
        using var request = new HttpRequestMessage(HttpMethod.Get, VolumePath(pool, name) + "/content");
        using var response = await TransmitAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw Refusal((int)response.StatusCode, response.ReasonPhrase, await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        }

        long length = response.Content.Headers.ContentLength ?? throw new DaemonException(500, null, "the daemon sent a volume's content without its length");
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await consume(stream, length).ConfigureAwait(false);
    }

    public Task<DaemonResponse<VolumeServing>> ServeVolumeAsync(string pool, string name, ServeVolumeRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, VolumePath(pool, name) + "/serve", JsonContent(request, Json.ServeVolumeRequest), Json.VolumeServing, cancellationToken);

    public Task StopServingVolumeAsync(string pool, string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, VolumePath(pool, name) + "/serve", null, cancellationToken);

    private static string VolumePath(string pool, string name) => $"v1/volumes/{Escape(pool)}/{Escape(name)}";

    // Events

    /// <summary>The newest events first, of one VM or all.</summary>
    public Task<DaemonResponse<List<VmEvent>>> ListEventsAsync(string? vm, int? limit, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, WithQuery("v1/events", ("vm", vm), ("limit", limit?.ToString(System.Globalization.CultureInfo.InvariantCulture))), null, Json.ListVmEvent, cancellationToken);

    /// <summary>
    /// The events as the daemon writes them (GET /v1/events/stream, server-sent events), after
    /// <paramref name="sinceId"/> if given, else from now; it ends when the daemon closes the stream.
    /// </summary>
    public async IAsyncEnumerable<DaemonResponse<VmEvent>> FollowEventsAsync(
        string? vm, long? sinceId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string path = WithQuery("v1/events/stream", ("vm", vm), ("since_id", sinceId?.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using var response = await OpenStreamAsync(path, cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), Encoding.UTF8);
        var data = new StringBuilder();
        string? line;
        while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                data.Append(data.Length > 0 ? "\n" : string.Empty).Append(line.AsSpan(5).TrimStart(' '));
            }
            else if (line.Length == 0 && data.Length > 0)
            {
                string json = data.ToString();
                data.Clear();
                yield return new DaemonResponse<VmEvent>(JsonSerializer.Deserialize(json, Json.VmEvent)
                    ?? throw new DaemonException(500, null, "the daemon's event stream sent a null event."), json);
            }

            // id:, event: and comment lines (heartbeats) need nothing: the JSON carries the id and type.
        }
    }

    /// <summary>Starts a streamed GET: the answer's headers are in, its body is still coming.</summary>
    private async Task<HttpResponseMessage> OpenStreamAsync(string path, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("text/event-stream");
        var response = await TransmitAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw Refusal((int)response.StatusCode, response.ReasonPhrase, await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
            }
        }

        return response;
    }

    public void Dispose()
    {
        _http.Dispose();
        _handler.Dispose();
    }

    private static string Escape(string segment) => Uri.EscapeDataString(segment);

    private static string VmPath(string vm) => $"v1/vms/{Escape(vm)}";

    /// <summary>The path with the parameters that have a value as its query.</summary>
    private static string WithQuery(string path, params (string Name, string? Value)[] parameters)
    {
        var given = parameters.Where(p => p.Value is not null).Select(p => $"{p.Name}={Escape(p.Value!)}").ToList();
        return given.Count == 0 ? path : $"{path}?{string.Join('&', given)}";
    }

    private static StringContent JsonContent<T>(T value, JsonTypeInfo<T> type) =>
        new(JsonSerializer.Serialize(value, type), Encoding.UTF8, "application/json");

    private async Task<DaemonResponse<T>> SendAsync<T>(
        HttpMethod method, string path, HttpContent? content, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        string body = await SendAsync(method, path, content, cancellationToken).ConfigureAwait(false);
        try
        {
            var value = JsonSerializer.Deserialize(body, type)
                ?? throw new JsonException("the answer is null");
            return new DaemonResponse<T>(value, body);
        }
        catch (JsonException e)
        {
            throw new DaemonException(500, null, $"the daemon's answer to {method} /{path} is not what this hostvm understands ({e.Message}); is the daemon the same version?");
        }
    }

    /// <summary>Sends one request; returns the answer's body, or throws for an error status or a failed connection.</summary>
    private async Task<string> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.Accept.ParseAdd("application/json");
        using (var response = await TransmitAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false))
        {
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return body;
            }

            throw Refusal((int)response.StatusCode, response.ReasonPhrase, body);
        }
    }

    /// <summary>Sends a request (every call goes through here); a failed connection becomes a <see cref="DaemonUnreachableException"/> or a broken one a <see cref="DaemonException"/>.</summary>
    private async Task<HttpResponseMessage> TransmitAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        try
        {
            return await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (CertificateRefusal(e) is { } refusal)
        {
            throw refusal;
        }
        catch (Exception e) when (Unreachable(e) is { } reason)
        {
            throw new DaemonUnreachableException(Address, reason, e);
        }
        catch (HttpRequestException e)
        {
            // Plain HTTP to the daemon's TCP port, which speaks only TLS, ends like this.
            string hint = Address.SocketPath is null && Address.BaseUri.Scheme == "http" ? "; the daemon serves HTTPS on TCP: write https://" : string.Empty;
            throw new DaemonException(500, null, $"{request.Method} /{request.RequestUri}: the connection to the daemon at {Address.Text} broke ({e.Message.TrimEnd('.')}{hint}).");
        }
    }

    /// <summary>Reads an error answer: problem+json when the daemon sent it, else the status and the start of the body.</summary>
    public static DaemonException Refusal(int status, string? reason, string body)
    {
        Problem? problem = null;
        try
        {
            problem = body.Length > 0 ? JsonSerializer.Deserialize(body, Json.Problem) : null;
        }
        catch (JsonException)
        {
        }

        if (problem is { Detail.Length: > 0 } or { Title.Length: > 0 })
        {
            return new DaemonException(status, problem, problem.Detail is { Length: > 0 } detail ? detail : problem.Title!);
        }

        string first = body.Split('\n', 2)[0].Trim();
        if (first.Length > 200)
        {
            first = first[..200] + "…";
        }

        string message = $"the daemon answered {status} {reason}".TrimEnd() + (first.Length > 0 ? $": {first}" : ".");
        return new DaemonException(status, null, message);
    }

    /// <summary>The refusal of the daemon's certificate, if that is what failed the TLS handshake behind <paramref name="e"/>.</summary>
    private DaemonCertificateException? CertificateRefusal(Exception e)
    {
        if (!_certificate.Refused || _certificate.Seen is not { } seen)
        {
            return null;
        }

        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is AuthenticationException)
            {
                return new DaemonCertificateException(Address, seen, _certificate.Pin, _certificate.Errors, e);
            }
        }

        return null;
    }

    /// <summary>Why no connection was made (refused, no socket, timed out), or null if one was and it broke later.</summary>
    private static string? Unreachable(Exception e)
    {
        if (e is TaskCanceledException { InnerException: TimeoutException } or TimeoutException)
        {
            return $"no answer within {ConnectTimeout.TotalSeconds:F0} s";
        }

        if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.ProxyTunnelError } http)
        {
            return SocketReason(http) ?? http.Message;
        }

        if (e is WebSocketException { InnerException: HttpRequestException inner })
        {
            return Unreachable(inner);
        }

        return null;
    }

    private static string? SocketReason(Exception e)
    {
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused",
                    SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported => "no such socket",
                    SocketError.TimedOut => "timed out",
                    SocketError.HostNotFound or SocketError.NoData => "no such host",
                    _ => socket.Message,
                };
            }
        }

        return null;
    }

    // Access control: tokens, projects and the audit log (kept together here, after the helpers they use).

    /// <summary>Makes a token; the answer holds the token itself, which the daemon never shows again.</summary>
    public Task<DaemonResponse<CreatedToken>> CreateTokenAsync(CreateTokenRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/tokens", JsonContent(request, Json.CreateTokenRequest), Json.CreatedToken, cancellationToken);

    public Task<DaemonResponse<List<Token>>> ListTokensAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/tokens", null, Json.ListToken, cancellationToken);

    public Task<DaemonResponse<Token>> GetTokenAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"v1/tokens/{Escape(id)}", null, Json.Token, cancellationToken);

    public Task RevokeTokenAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"v1/tokens/{Escape(id)}", null, cancellationToken);

    public Task<DaemonResponse<Project>> CreateProjectAsync(CreateProjectRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/projects", JsonContent(request, Json.CreateProjectRequest), Json.Project, cancellationToken);

    public Task<DaemonResponse<List<Project>>> ListProjectsAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/projects", null, Json.ListProject, cancellationToken);

    public Task<DaemonResponse<Project>> GetProjectAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"v1/projects/{Escape(name)}", null, Json.Project, cancellationToken);

    public Task<DaemonResponse<Project>> UpdateProjectAsync(string name, UpdateProjectRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Patch, $"v1/projects/{Escape(name)}", JsonContent(request, Json.UpdateProjectRequest), Json.Project, cancellationToken);

    public Task DeleteProjectAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"v1/projects/{Escape(name)}", null, cancellationToken);

    /// <summary>Audit entries, newest first; a null filter is left out of the query.</summary>
    public Task<DaemonResponse<List<AuditEntry>>> ListAuditAsync(
        DateTimeOffset? since, DateTimeOffset? until, string? project, string? obj, string? who, int? limit, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, WithQuery("v1/audit", ("since", QueryTime(since)), ("until", QueryTime(until)), ("project", project), ("object", obj), ("who", who),
            ("limit", limit?.ToString(System.Globalization.CultureInfo.InvariantCulture))), null, Json.ListAuditEntry, cancellationToken);

    /// <summary>A time for a query: ISO 8601 in UTC, which the daemon parses whatever its culture.</summary>
    private static string? QueryTime(DateTimeOffset? at) =>
        at?.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);
}
