using System.Net;
using HostVM.Host.Api;
using HostVM.Host.Images;
using HostVM.Host.Inventory;
using HostVM.Host.Metrics;
using HostVM.Host.Networks;
using HostVM.Host.Security;
using HostVM.Host.Supervision;
using HostVM.Vmm;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace HostVM.Host;

/// <summary>
/// <c>hostvm serve</c>: the inventory, the image store, the networks and the supervisor behind the REST API,
/// on TCP (HTTPS only, see <see cref="TlsIdentity"/>) and on a local Unix socket (owner-only, plain HTTP). Stopping the daemon leaves the VMs running; the next
/// daemon adopts them.
/// </summary>
public sealed class HostDaemon : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly InventoryStore _inventory;
    private readonly VmSupervisor _supervisor;
    private readonly NetworkManager _networks;
    private readonly StatsSampler _sampler;
    private readonly EventBroadcaster _events;
    private readonly AuditLog _audit;
    private readonly FileStream _lock;

    private HostDaemon(WebApplication app, InventoryStore inventory, VmSupervisor supervisor, NetworkManager networks, StatsSampler sampler, EventBroadcaster events, AuditLog audit, HostSettings settings, FileStream dataLock, TlsIdentity? tls)
    {
        _audit = audit;
        Tls = tls;
        _sampler = sampler;
        _events = events;
        _lock = dataLock;
        _app = app;
        _inventory = inventory;
        _supervisor = supervisor;
        _networks = networks;
        Settings = settings;
    }

    public HostSettings Settings { get; }

    /// <summary>The admin token made at the first start (null on later starts): shown once, never stored in clear.</summary>
    public string? InitialToken { get; private init; }
    /// <summary>The certificate the TCP listeners serve; null when there are none (the Unix socket alone).</summary>
    public TlsIdentity? Tls { get; }

    /// <summary>The addresses the API is served on (TCP with the port actually bound, and the Unix socket).</summary>
    public IReadOnlyList<string> Addresses { get; private set; } = [];

    public static async Task<HostDaemon> StartAsync(HostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        // Tenants' disks, consoles, logs and the inventory: from here on every file, directory and socket the
        // daemon (and each VMM it starts, which inherits this) creates is its user's alone, from the instant it exists.
        OwnerOnly.RestrictUmask();
        OwnerOnly.CreateDirectory(settings.DataDir);
        if (!OperatingSystem.IsWindows() && OwnerOnly.Status(settings.DataDir) is { } data && data.Owner == OwnerOnly.EffectiveUserId)
        {
            File.SetUnixFileMode(settings.DataDir, OwnerOnly.DirectoryMode); // one an older version made 0755: no one else may walk in
        }

        RuntimeDirectory.Prepare(settings.RuntimeDir);
        FileStream dataLock;
        try
        {
            // FileShare.None is an exclusive flock on Unix: one daemon per data directory.
            dataLock = new FileStream(Path.Combine(settings.DataDir, "hostvm.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new HostSettingsException($"data_dir {settings.DataDir}: another hostvm daemon is using it.");
        }

        foreach (var dir in settings.ImportDirs)
        {
            if (dir.StartsWith(settings.DataDir, StringComparison.Ordinal))
            {
                Directory.CreateDirectory(dir);
            }
        }

        // Before anything else is opened: a certificate that cannot be used is a setting to fix, not a half-started daemon.
        TlsIdentity? tls;
        try
        {
            tls = settings.Listen.Count > 0 ? TlsIdentity.Load(settings) : null;
        }
        catch
        {
            await dataLock.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var inventory = new InventoryStore(Path.Combine(settings.DataDir, "hostvm.db"));
        var images = new ImageStore(settings, inventory);
        var networks = new NetworkManager(settings, inventory);
        var volumes = new Storage.VolumeManager(settings, inventory);
        var supervisor = new VmSupervisor(settings, inventory, images, volumes);
        var sampler = new StatsSampler(settings, inventory, supervisor);
        var events = new EventBroadcaster(inventory);
        var tokens = new TokenService(inventory);
        string? initialToken = null;
        if (tokens.IsEmpty)
        {
            // The first start makes the first admin token; it is printed once (hostvm token create over the local socket makes more).
            initialToken = tokens.Create(Roles.Admin, null, null, "made at the daemon's first start", "first-start").Token;
        }

        var audit = new AuditLog(inventory, settings.AuditMaxRows, TimeSpan.FromSeconds(5));
        var access = new AccessControl(tokens, new AuthFailureThrottle(settings.AuthFailureLimit, TimeSpan.FromMinutes(1)), audit);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = HostApi.MaxReadBytes;
            foreach (var listen in settings.Listen)
            {
                if (!IPEndPoint.TryParse(listen, out var endpoint))
                {
                    throw new HostSettingsException($"listen {listen}: write HOST:PORT, e.g. 127.0.0.1:{HostSettings.DefaultPort}.");
                }

                k.Listen(endpoint, l => l.UseHttps(tls!.Certificate));
            }

            if (settings.UnixSocket is { Length: > 0 } socket)
            {
                OwnerOnly.CreateDirectory(Path.GetDirectoryName(socket)!);
                File.Delete(socket); // a stale socket of a daemon that died (the data directory's lock proves none runs)
                // Bound under umask 077, so it is 0700 from the start; and each connection's peer is checked.
                k.ListenUnixSocket(socket, l => l.Use(PeerCredentials.OwnerOrRootOnly));
            }
        });
        builder.Services.AddProblemDetails();
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            // The OpenAPI document describes the JSON as the daemon writes it: snake_case, from the same contract.
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, HostJsonContext.Default);
        });
        builder.Services.AddOpenApi(OpenApiDescription.DocumentName, OpenApiDescription.Configure);
        builder.Services.AddOutputCache(); // the OpenAPI document is made once, not per request: it is served to anyone
        if (tls is not null)
        {
            builder.Services.AddSingleton(tls); // GET /v1/host shows its fingerprint
        }

        var app = builder.Build();
        app.UseWebSockets();
        app.UseOutputCache();
        new HostApi(supervisor, images, networks, volumes, inventory, settings, sampler, events).Map(app, access);
        app.Lifetime.ApplicationStopped.Register(volumes.Dispose); // NBD servers of volumes: their files closed cleanly

        var daemon = new HostDaemon(app, inventory, supervisor, networks, sampler, events, audit, settings, dataLock, tls) { InitialToken = initialToken };
        supervisor.Start();
        sampler.Start();
        inventory.AddEvent(null, "daemon", $"daemon started (pid {Environment.ProcessId})");
        await app.StartAsync().ConfigureAwait(false);
        if (settings.UnixSocket is { Length: > 0 } path && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // the local socket is the owner's alone
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        daemon.Addresses = [.. bound];
        return daemon;
    }

    /// <summary>Returns when <paramref name="token"/> is cancelled or the host is told to stop (SIGTERM).</summary>
    public async Task WaitForShutdownAsync(CancellationToken token)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(token, _app.Lifetime.ApplicationStopping);
        try
        {
            await Task.Delay(Timeout.Infinite, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _events.Dispose(); // the event streams end, so Kestrel's stop does not wait for them
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        await _sampler.DisposeAsync().ConfigureAwait(false);
        _supervisor.Dispose();
        _networks.Dispose();
        _audit.Dispose(); // the counts of the last seconds' refusals are written
        _inventory.AddEvent(null, "daemon", "daemon stopped; VMs keep running");
        _inventory.Dispose();
        await _lock.DisposeAsync().ConfigureAwait(false);
        Tls?.Dispose();
        if (Settings.UnixSocket is { Length: > 0 } socket)
        {
            File.Delete(socket);
        }
    }
}
