using System.Globalization;
using HostVM.Cli.Api;
using HostVM.Host.Metrics;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace HostVM.Cli;

/// <summary>How `vm stats`, `vm stats --history` and `top` show statistics: rates made short, VMs in one table.</summary>
public static class StatsView
{
    /// <summary>The columns of `top`, one row per VM.</summary>
    public static readonly string[] TopColumns = ["NAME", "STATE", "VCPUS", "CPU %", "MIPS", "MEMORY", "RSS", "DISK R/S", "DISK W/S", "NET RX/S", "NET TX/S"];

    public static readonly string[] HistoryColumns = ["TIME", "MIPS", "CPU %", "VCPU %", "RSS", "DISK R/S", "DISK W/S", "NET RX/S", "NET TX/S"];

    public static string Number(double value, string format = "0.0") => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Bytes per second, short: 512 B/s, 1.5 MiB/s.</summary>
    public static string PerSecond(double? bytesPerS) => bytesPerS is { } b ? $"{HumanOutput.Bytes((long)Math.Round(b))}/s" : "-";

    /// <summary>`vm stats NAME`: the VM's numbers, then a line per drive and per NIC.</summary>
    public static void Show(IAnsiConsole screen, VmStats s)
    {
        ArgumentNullException.ThrowIfNull(screen);
        ArgumentNullException.ThrowIfNull(s);
        var r = s.Rates;
        var fields = new List<(string, string)>
        {
            ("Name", Markup.Escape(s.Name)),
            ("State", HumanOutput.State(s.State)),
            ("vCPUs", s.Vcpus.ToString(CultureInfo.InvariantCulture) + (s.CpuCapPercent is { } cap ? $", capped at {cap}%" : string.Empty)),
            ("Memory", $"{HumanOutput.Mib(s.MemoryMib)} guest, {HumanOutput.Bytes(s.HostRssBytes)} resident on the host"),
            ("Uptime", s.At is null ? "-" : TimeSpan.FromMilliseconds(s.UptimeMs).ToString(@"d\.hh\:mm\:ss", CultureInfo.InvariantCulture)),
            ("MIPS", r is null ? "-" : Number(r.Mips, "0.00")),
            ("CPU", r is null ? "-" : $"{Number(r.CpuPercent)}% VMM, {Number(r.VcpuPercent)}% vCPUs, {Number(r.ThrottledPercent)}% throttled"),
            ("Instructions", s.InstructionsRetired.ToString("N0", CultureInfo.InvariantCulture)),
            ("CPU time", $"{Number(s.CpuTimeMs / 1000.0, "0.00")} s VMM, {Number(s.VcpuTimeMs / 1000.0, "0.00")} s vCPUs, {Number(s.CpuThrottledMs / 1000.0, "0.00")} s throttled"),
            ("Disk", $"{HumanOutput.Bytes(s.DiskReadBytes)} read, {HumanOutput.Bytes(s.DiskWrittenBytes)} written"
                + (r is null ? string.Empty : $"; now {PerSecond(r.DiskReadBytesPerS)} ({Number(r.DiskReadOpsPerS)} ops/s) read, {PerSecond(r.DiskWriteBytesPerS)} ({Number(r.DiskWriteOpsPerS)} ops/s) written")),
            ("Network", $"{HumanOutput.Bytes(s.NetRxBytes)} received, {HumanOutput.Bytes(s.NetTxBytes)} sent"
                + (r is null ? string.Empty : $"; now {PerSecond(r.NetRxBytesPerS)} in, {PerSecond(r.NetTxBytesPerS)} out")),
            ("Measured", r is null ? (s.Unavailable is { } why ? Markup.Escape(why) : "-") : $"{HumanOutput.Time(s.At)}, rates over {Number(r.IntervalMs / 1000.0)} s" + (r.CountersReset ? " (the VMM restarted in between)" : string.Empty)),
        };
        screen.Write(HumanOutput.Fields(fields));
        if (s.Drives.Count > 0)
        {
            var drives = HumanOutput.Table("DRIVE", "READS", "WRITES", "READ", "WRITTEN", "FLUSHES", "ERRORS", "THROTTLED");
            foreach (var d in s.Drives)
            {
                drives.AddRow(Markup.Escape(d.DriveId), Count(d.Reads), Count(d.Writes), HumanOutput.Bytes(d.BytesRead), HumanOutput.Bytes(d.BytesWritten), Count(d.Flushes), Count(d.Errors), Count(d.Throttled));
            }

            screen.Write(drives);
        }

        if (s.NetworkInterfaces.Count > 0)
        {
            var nics = HumanOutput.Table("NIC", "RX FRAMES", "RX", "RX DROPPED", "TX FRAMES", "TX", "TX DROPPED", "THROTTLED");
            foreach (var n in s.NetworkInterfaces)
            {
                nics.AddRow(Markup.Escape(n.IfaceId), Count(n.RxFrames), HumanOutput.Bytes(n.RxBytes), Count(n.RxDropped), Count(n.TxFrames), HumanOutput.Bytes(n.TxBytes), Count(n.TxDropped), Count(n.RxThrottled + n.TxThrottled));
            }

            screen.Write(nics);
        }
    }

    /// <summary>One row of `vm stats --history`.</summary>
    public static string[] HistoryRow(StatsSample sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var r = sample.Rates;
        return
        [
            HumanOutput.Time(sample.Counters.At),
            r is null ? "-" : Number(r.Mips, "0.00"),
            r is null ? "-" : Number(r.CpuPercent),
            r is null ? "-" : Number(r.VcpuPercent),
            HumanOutput.Bytes(sample.Counters.HostRssBytes),
            PerSecond(r?.DiskReadBytesPerS),
            PerSecond(r?.DiskWriteBytesPerS),
            PerSecond(r?.NetRxBytesPerS),
            PerSecond(r?.NetTxBytesPerS),
        ];
    }

    /// <summary>One frame of `top`: a line about the host, then the VMs, busiest first.</summary>
    public static IRenderable TopFrame(HostStats host)
    {
        ArgumentNullException.ThrowIfNull(host);
        string load = host.LoadAverage.Count == 0 ? "-" : string.Join(' ', host.LoadAverage.Select(l => Number(l, "0.00")));
        int running = host.VmsByState.GetValueOrDefault("running") + host.VmsByState.GetValueOrDefault("paused");
        var t = host.Totals;
        var summary = new Markup(
            $"[bold]{HumanOutput.Time(host.At)}[/]  load {load} on {host.Cores} cores  ·  memory {HumanOutput.Bytes(host.MemoryAvailableBytes)} free of {HumanOutput.Bytes(host.MemoryTotalBytes)}  ·  " +
            $"{host.Vms.Count} VMs, {running} running  ·  {Number(t.Mips)} MIPS, {Number(t.CpuPercent)}% CPU, {HumanOutput.Bytes(t.HostRssBytes)} RSS");
        var table = HumanOutput.Table(TopColumns);
        foreach (var vm in host.Vms.OrderByDescending(v => v.Rates?.CpuPercent ?? -1).ThenBy(v => v.Name, StringComparer.Ordinal))
        {
            var r = vm.Rates;
            table.AddRow(
                Markup.Escape(vm.Name),
                HumanOutput.State(vm.State),
                vm.Vcpus.ToString(CultureInfo.InvariantCulture),
                r is null ? "-" : Number(r.CpuPercent),
                r is null ? (vm.Unavailable is null ? "-" : "[red]?[/]") : Number(r.Mips),
                HumanOutput.Mib(vm.MemoryMib),
                vm.At is null ? "-" : HumanOutput.Bytes(vm.HostRssBytes),
                PerSecond(r?.DiskReadBytesPerS),
                PerSecond(r?.DiskWriteBytesPerS),
                PerSecond(r?.NetRxBytesPerS),
                PerSecond(r?.NetTxBytesPerS));
        }

        return new Rows(summary, table);
    }

    private static string Count(long n) => n.ToString(CultureInfo.InvariantCulture);
}
