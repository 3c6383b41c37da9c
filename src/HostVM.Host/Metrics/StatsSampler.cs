using System.Collections.Concurrent;
using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Supervision;
using HostVM.Vmm.Api;

namespace HostVM.Host.Metrics;

/// <summary>
/// Reads every running and paused VM's VMM every <c>stats_interval_s</c> (in parallel, each with a
/// <see cref="VmmTimeout"/>, on its own task so the API never waits for it) and keeps one hour of
/// samples per VM in memory (<see cref="StatsHistory"/>); a deleted VM's history is forgotten at the
/// next tick. It also answers the stats routes: a fresh reading, with rates measured from the newest
/// earlier reading at least <see cref="MinRateInterval"/> old.
/// </summary>
public sealed class StatsSampler : IAsyncDisposable
{
    public static readonly TimeSpan VmmTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Rates over less time than this are mostly noise (the VMM's counters move in steps of whole blocks and ms).</summary>
    public static readonly TimeSpan MinRateInterval = TimeSpan.FromSeconds(1);

    private static readonly string[] States = [VmStates.Stopped, VmStates.Starting, VmStates.Running, VmStates.Paused, VmStates.Stopping, VmStates.Failed];

    private readonly InventoryStore _inventory;
    private readonly VmSupervisor _supervisor;
    private readonly ConcurrentDictionary<string, StatsHistory> _histories = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    public StatsSampler(HostSettings settings, InventoryStore inventory, VmSupervisor supervisor)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _inventory = inventory;
        _supervisor = supervisor;
        Interval = TimeSpan.FromSeconds(settings.StatsIntervalS);
        HistoryCapacity = Math.Max(1, 3600 / settings.StatsIntervalS);
    }

    public TimeSpan Interval { get; }

    /// <summary>Samples kept per VM: one hour's worth (360 at the default 10 s).</summary>
    public int HistoryCapacity { get; }

    /// <summary>How many VMs have a history in memory (the deleted ones' are forgotten at the next tick).</summary>
    internal int TrackedVms => _histories.Count;

    /// <summary>Takes the first sample now and then one every <see cref="Interval"/>, until disposed.</summary>
    public void Start() => _loop = Task.Run(RunAsync);

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            do
            {
                await SampleOnceAsync().ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException) when (_stopping.IsCancellationRequested)
        {
            // The inventory closed under a tick as the daemon stopped.
        }
    }

    /// <summary>One tick: forgets deleted VMs, reads the others that run, and adds a sample for each that answered.</summary>
    public async Task SampleOnceAsync()
    {
        var vms = _inventory.Vms();
        var ids = vms.Select(v => v.Id).ToHashSet();
        foreach (string id in _histories.Keys.Where(id => !ids.Contains(id)))
        {
            _histories.TryRemove(id, out _);
        }

        await Task.WhenAll(vms.Where(Readable).Select(async vm =>
        {
            if (await TryReadAsync(vm).ConfigureAwait(false) is { } counters)
            {
                HistoryOf(vm).Add(counters);
            }
        })).ConfigureAwait(false);
    }

    /// <summary>GET /v1/vms/{vm}/stats. 404 for no such VM; 502 if its VMM does not answer.</summary>
    public async Task<VmStats> VmStatsAsync(string nameOrId, CancellationToken cancellationToken = default)
    {
        var vm = _supervisor.Get(nameOrId);
        if (!Readable(vm))
        {
            return Facts(vm);
        }

        var stats = await _supervisor.ReadStatisticsAsync(vm, VmmTimeout, cancellationToken).ConfigureAwait(false);
        return await WithRatesAsync(vm, stats, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>GET /v1/vms/{vm}/stats/history: the samples at or after <paramref name="since"/>, oldest first.</summary>
    public IReadOnlyList<StatsSample> History(string nameOrId, DateTimeOffset? since) =>
        _histories.TryGetValue(_supervisor.Get(nameOrId).Id, out var history) ? history.Samples(since) : [];

    /// <summary>The history's ?since=: an ISO 8601 time (2026-11-24T10:00:00Z), or null for the whole hour.</summary>
    public static DateTimeOffset? ParseSince(string? since) =>
        since is null ? null
        : DateTimeOffset.TryParse(since, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at) ? at
        : throw ApiProblem.BadRequest($"since {since}: write an ISO 8601 time, e.g. 2026-11-24T10:00:00Z.", "since");

    /// <summary>GET /v1/host/stats: every VM (of <paramref name="project"/> if given) read afresh in parallel; one that does not answer is marked.</summary>
    public async Task<HostStats> HostStatsAsync(string? project = null, CancellationToken cancellationToken = default)
    {
        var vms = _inventory.Vms().Where(v => project is null || v.Project == project).ToList();
        var lines = await Task.WhenAll(vms.Select(async vm =>
        {
            if (!Readable(vm))
            {
                return Facts(vm);
            }

            try
            {
                var stats = await _supervisor.ReadStatisticsAsync(vm, VmmTimeout, cancellationToken).ConfigureAwait(false);
                return await WithRatesAsync(vm, stats, cancellationToken).ConfigureAwait(false) with { Drives = [], NetworkInterfaces = [] };
            }
            catch (ApiProblem p) when (p.Status == 502)
            {
                return Facts(vm) with { Unavailable = p.Message };
            }
        })).ConfigureAwait(false);

        var read = lines.Where(l => l.At is not null).ToList();
        var rated = read.Where(l => l.Rates is not null).Select(l => l.Rates!).ToList();
        var holding = vms.Where(v => VmStates.HasProcess(v.State)).ToList();
        var (memoryTotal, memoryAvailable) = HostProc.Memory();
        return new HostStats
        {
            At = DateTimeOffset.UtcNow,
            Cores = Environment.ProcessorCount,
            LoadAverage = HostProc.LoadAverage(),
            MemoryTotalBytes = memoryTotal,
            MemoryAvailableBytes = memoryAvailable,
            VmsByState = States.ToDictionary(s => s, s => vms.Count(v => v.State == s)),
            VcpusAllocated = holding.Sum(v => v.Vcpus),
            MemoryAllocatedMib = holding.Sum(v => v.MemoryMib),
            Totals = new HostTotals
            {
                Mips = rated.Sum(r => r.Mips),
                CpuPercent = rated.Sum(r => r.CpuPercent),
                HostRssBytes = read.Sum(l => l.HostRssBytes),
                DiskReadBytes = read.Sum(l => l.DiskReadBytes),
                DiskWrittenBytes = read.Sum(l => l.DiskWrittenBytes),
                NetRxBytes = read.Sum(l => l.NetRxBytes),
                NetTxBytes = read.Sum(l => l.NetTxBytes),
                DiskReadBytesPerS = rated.Sum(r => r.DiskReadBytesPerS),
                DiskWriteBytesPerS = rated.Sum(r => r.DiskWriteBytesPerS),
                NetRxBytesPerS = rated.Sum(r => r.NetRxBytesPerS),
                NetTxBytesPerS = rated.Sum(r => r.NetTxBytesPerS),
            },
            Vms = lines,
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }

    private static bool Readable(VmRecord vm) => vm.State is VmStates.Running or VmStates.Paused;

    private StatsHistory HistoryOf(VmRecord vm) => _histories.GetOrAdd(vm.Id, _ => new StatsHistory(HistoryCapacity));

    private async Task<StatsCounters?> TryReadAsync(VmRecord vm)
    {
        try
        {
            var stats = await _supervisor.ReadStatisticsAsync(vm, VmmTimeout, _stopping.Token).ConfigureAwait(false);
            return StatsCounters.From(stats, DateTimeOffset.UtcNow);
        }
        catch (ApiProblem)
        {
            return null; // a VMM that does not answer now has no sample this tick
        }
    }

    /// <summary>
    /// The reading with rates from the newest earlier reading at least <see cref="MinRateInterval"/> old;
    /// with none (a VM just started, or the first request), the VMM is read again that long after.
    /// </summary>
    private async Task<VmStats> WithRatesAsync(VmRecord vm, VmmStatistics stats, CancellationToken cancellationToken)
    {
        var history = HistoryOf(vm);
        var now = StatsCounters.From(stats, DateTimeOffset.UtcNow);
        var earlier = history.BaseFor(now.At, MinRateInterval);
        history.Remember(now);
        if (earlier is null)
        {
            await Task.Delay(MinRateInterval, cancellationToken).ConfigureAwait(false);
            earlier = now;
            stats = await _supervisor.ReadStatisticsAsync(vm, VmmTimeout, cancellationToken).ConfigureAwait(false);
            now = StatsCounters.From(stats, DateTimeOffset.UtcNow);
            history.Remember(now);
        }

        return Facts(vm) with
        {
            At = now.At,
            UptimeMs = stats.UptimeMs,
            InstructionsRetired = stats.InstructionsRetired,
            CpuTimeMs = stats.CpuTimeMs,
            VcpuTimeMs = stats.VcpuTimeMs,
            CpuThrottledMs = stats.CpuThrottledMs,
            GuestMemoryBytes = stats.GuestMemoryBytes,
            HostRssBytes = stats.HostRssBytes,
            DiskReadBytes = now.DiskReadBytes,
            DiskWrittenBytes = now.DiskWrittenBytes,
            NetRxBytes = now.NetRxBytes,
            NetTxBytes = now.NetTxBytes,
            Drives = stats.Drives,
            NetworkInterfaces = stats.NetworkInterfaces,
            Rates = StatsRates.Between(earlier, now),
        };
    }

    /// <summary>What the inventory says, with zeros for the counters: a VM with no VMM to read.</summary>
    private static VmStats Facts(VmRecord vm) => new()
    {
        Id = vm.Id,
        Name = vm.Name,
        State = vm.State,
        Vcpus = vm.Vcpus,
        MemoryMib = vm.MemoryMib,
        CpuCapPercent = vm.CpuCapPercent,
    };
}
