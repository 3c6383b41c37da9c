using System.Net.Sockets;
using System.Text;
using HostVM.Host.Api;
using HostVM.Host.Images;
using HostVM.Host.Inventory;
using HostVM.Host.Metrics;
using HostVM.Host.Supervision;

namespace HostVM.Host.Tests.Metrics;

/// <summary>
/// The sampler against stand-in VMMs answering GET /hostvm/stats over real Unix sockets: samples and
/// rates, a VMM restart, a stuck VMM that costs only its own sample, a stopped VM, a deleted VM forgotten.
/// </summary>
public sealed class StatsSamplerTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("hvs-").FullName;
    private readonly List<FakeVmm> _vmms = [];
    private InventoryStore _inventory = null!;
    private VmSupervisor _supervisor = null!;
    private StatsSampler _sampler = null!;

    public ValueTask InitializeAsync()
    {
        var settings = new HostSettings { DataDir = Path.Combine(_root, "d"), RuntimeDir = Path.Combine(_root, "r"), StatsIntervalS = 10 };
        Directory.CreateDirectory(settings.DataDir);
        _inventory = new InventoryStore(Path.Combine(settings.DataDir, "hostvm.db"));
        _supervisor = new VmSupervisor(settings, _inventory, new ImageStore(settings, _inventory), new HostVM.Host.Storage.VolumeManager(settings, _inventory));
        _sampler = new StatsSampler(settings, _inventory, _supervisor);
        return ValueTask.CompletedTask;
    }

    private VmRecord AddVm(string name, string state)
    {
        var vm = new VmRecord { Id = name + "0000", Name = name, Image = "guest", State = state, Vcpus = 2, MemoryMib = 64 };
        _inventory.PutVm(vm, "created", "created");
        return vm;
    }

    private FakeVmm Serve(VmRecord vm, bool stuck = false)
    {
        var vmm = new FakeVmm(_supervisor.PathsOf(vm).ApiSocket, stuck);
        _vmms.Add(vmm);
        return vmm;
    }

    [Fact]
    public async Task SamplesGrowWithRatesAndAVmmRestartGivesNoNegativeRate()
    {
        Assert.Equal(360, _sampler.HistoryCapacity);
        var vm = AddVm("web", VmStates.Running);
        var vmm = Serve(vm);
        vmm.Set(uptimeMs: 60_000, instructions: 1_000_000_000, cpuMs: 50_000, diskReadBytes: 1 << 20);
        await _sampler.SampleOnceAsync();
        await Task.Delay(50);
        vmm.Set(uptimeMs: 70_000, instructions: 4_000_000_000, cpuMs: 60_000, diskReadBytes: 2 << 20);
        await _sampler.SampleOnceAsync();
        await Task.Delay(50);
        vmm.Set(uptimeMs: 10, instructions: 5_000, cpuMs: 5, diskReadBytes: 0); // the VMM restarted
        await _sampler.SampleOnceAsync();

        var samples = _sampler.History("web", null);
        Assert.Equal(3, samples.Count);
        Assert.Null(samples[0].Rates);
        Assert.False(samples[1].Rates!.CountersReset);
        Assert.True(samples[1].Rates!.Mips > 0 && samples[1].Rates!.DiskReadBytesPerS > 0);
        var reset = samples[2].Rates!;
        Assert.True(reset.CountersReset);
        Assert.True(reset.Mips >= 0 && reset.CpuPercent >= 0 && reset.DiskReadBytesPerS >= 0 && reset.DiskReadOpsPerS >= 0);
        Assert.Equal(2, _sampler.History("web", samples[1].Counters.At).Count);

        // A fresh reading has rates against the newest sample (at least MinRateInterval old by then).
        await Task.Delay(StatsSampler.MinRateInterval);
        vmm.Set(uptimeMs: 2_000, instructions: 1_005_000, cpuMs: 100, diskReadBytes: 0);
        var fresh = await _sampler.VmStatsAsync("web");
        Assert.Equal("running", fresh.State);
        Assert.Equal(1_005_000UL, fresh.InstructionsRetired);
        Assert.False(fresh.Rates!.CountersReset);
        Assert.True(fresh.Rates.IntervalMs >= 1000);
        Assert.InRange(fresh.Rates.Mips, 0.001, 1.0); // 1e6 instructions over a little more than 1 s
    }

    [Fact]
    public async Task AStuckVmmCostsItsOwnSampleAndAStoppedVmIsNotRead()
    {
        var good = AddVm("good", VmStates.Running);
        var stuck = AddVm("stuck", VmStates.Paused);
        AddVm("parked", VmStates.Stopped);
        Serve(good).Set(uptimeMs: 1_000, instructions: 10, cpuMs: 1, diskReadBytes: 0);
        Serve(stuck, stuck: true);

        await _sampler.SampleOnceAsync(); // returns once the stuck VMM's timeout passes
        Assert.Single(_sampler.History("good", null));
        Assert.Empty(_sampler.History("stuck", null));
        Assert.Empty(_sampler.History("parked", null));

        var problem = await Assert.ThrowsAsync<ApiProblem>(() => _sampler.VmStatsAsync("stuck"));
        Assert.Equal(502, problem.Status);
        var parked = await _sampler.VmStatsAsync("parked");
        Assert.Equal(("stopped", 0UL, null), (parked.State, parked.InstructionsRetired, parked.Rates));
        Assert.Equal(404, (await Assert.ThrowsAsync<ApiProblem>(() => _sampler.VmStatsAsync("nosuch"))).Status);

        var host = await _sampler.HostStatsAsync();
        Assert.Equal(3, host.Vms.Count);
        Assert.NotNull(host.Vms.Single(v => v.Name == "stuck").Unavailable);
        Assert.Equal(4, host.VcpusAllocated); // good and stuck hold a VMM; parked does not
        Assert.Equal(1, host.VmsByState["stopped"]);
    }

    [Fact]
    public async Task ADeletedVmsHistoryIsForgottenAtTheNextTick()
    {
        var gone = AddVm("gone", VmStates.Running);
        var kept = AddVm("kept", VmStates.Running);
        Serve(gone).Set(uptimeMs: 1_000, instructions: 10, cpuMs: 1, diskReadBytes: 0);
        Serve(kept).Set(uptimeMs: 1_000, instructions: 10, cpuMs: 1, diskReadBytes: 0);
        await _sampler.SampleOnceAsync();
        Assert.Equal(2, _sampler.TrackedVms);

        _inventory.DeleteVm(gone, "deleted");
        await _sampler.SampleOnceAsync();
        Assert.Equal(1, _sampler.TrackedVms);
        Assert.Equal(2, _sampler.History("kept", null).Count);
    }

    public async ValueTask DisposeAsync()
    {
        await _sampler.DisposeAsync();
        foreach (var vmm in _vmms)
        {
            vmm.Dispose();
        }

        _supervisor.Dispose();
        _inventory.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>Answers every HTTP request on a Unix socket with the counters set last (or, stuck, never answers).</summary>
    private sealed class FakeVmm : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        private readonly List<Socket> _held = [];
        private readonly bool _stuck;
        private volatile string _json = "{}";

        public FakeVmm(string path, bool stuck)
        {
            _stuck = stuck;
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen();
            _ = Task.Run(AcceptAsync);
        }

        public void Set(long uptimeMs, ulong instructions, long cpuMs, long diskReadBytes) => _json = $$"""
            {"state": "Running", "uptime_ms": {{uptimeMs}}, "vcpu_count": 2, "instructions_retired": {{instructions}},
             "cpu_time_ms": {{cpuMs}}, "vcpu_time_ms": {{cpuMs}}, "cpu_throttled_ms": 0, "guest_memory_bytes": 67108864,
             "host_rss_bytes": 1048576,
             "drives": [{"drive_id": "rootfs", "reads": {{diskReadBytes / 4096}}, "writes": 0, "bytes_read": {{diskReadBytes}},
                         "bytes_written": 0, "flushes": 0, "errors": 0, "throttled": 0}],
             "network_interfaces": []}
            """;

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptAsync();
                    if (_stuck)
                    {
                        lock (_held)
                        {
                            _held.Add(client);
                        }

                        continue;
                    }

                    _ = Task.Run(() => AnswerAsync(client));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        private async Task AnswerAsync(Socket client)
        {
            using (client)
            {
                var buffer = new byte[4096];
                var request = new StringBuilder();
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    int n = await client.ReceiveAsync(buffer);
                    if (n == 0)
                    {
                        return;
                    }

                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }

                byte[] body = Encoding.UTF8.GetBytes(_json);
                byte[] head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
                await client.SendAsync(head.Concat(body).ToArray());
                client.Shutdown(SocketShutdown.Both);
            }
        }

        public void Dispose()
        {
            _listener.Dispose();
            lock (_held)
            {
                foreach (var s in _held)
                {
                    s.Dispose();
                }
            }
        }
    }
}
