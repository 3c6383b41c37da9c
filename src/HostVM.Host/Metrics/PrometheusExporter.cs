using System.Globalization;
using System.Text;
using HostVM.Host.Inventory;
using HostVM.Host.Supervision;
using HostVM.Vmm.Api;

namespace HostVM.Host.Metrics;

/// <summary>
/// GET /metrics: the host and every VM in the Prometheus text format (version 0.0.4), one sample per
/// VM labelled with its name. Running VMs' counters come from their VMMs, asked in parallel with a short
/// timeout, so one stuck VMM costs its own samples, not the scrape.
/// </summary>
public sealed class PrometheusExporter(InventoryStore inventory, VmSupervisor supervisor)
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static readonly TimeSpan VmmTimeout = TimeSpan.FromSeconds(2);

    private static readonly string[] States = [VmStates.Stopped, VmStates.Starting, VmStates.Running, VmStates.Paused, VmStates.Stopping, VmStates.Failed];

    /// <summary>The host and its VMs (with <paramref name="project"/>, only that project's VMs).</summary>
    public async Task<string> ScrapeAsync(string? project = null)
    {
        var vms = inventory.Vms().Where(v => project is null || v.Project == project).ToList();
        var stats = await Task.WhenAll(vms.Select(ReadAsync)).ConfigureAwait(false);
        var info = supervisor.Info();
        var text = new StringBuilder();

        Family(text, "hostvm_host_vcpus_capacity", "gauge", "vCPUs VMs may hold (cores x CPU overcommit).");
        Sample(text, "hostvm_host_vcpus_capacity", "", info.Capacity.Vcpus);
        Family(text, "hostvm_host_memory_capacity_bytes", "gauge", "Memory VMs may hold.");
        Sample(text, "hostvm_host_memory_capacity_bytes", "", info.Capacity.MemoryMib << 20);
        Family(text, "hostvm_host_vcpus_allocated", "gauge", "vCPUs held by running and paused VMs.");
        Sample(text, "hostvm_host_vcpus_allocated", "", info.Allocated.Vcpus);
        Family(text, "hostvm_host_memory_allocated_bytes", "gauge", "Memory held by running and paused VMs.");
        Sample(text, "hostvm_host_memory_allocated_bytes", "", info.Allocated.MemoryMib << 20);
        Family(text, "hostvm_host_vms", "gauge", "VMs in each state.");
        foreach (var state in States)
        {
            Sample(text, "hostvm_host_vms", Labels(("state", state)), vms.Count(v => v.State == state));
        }

        Family(text, "hostvm_vm_state", "gauge", "1 for the state the VM is in.");
        foreach (var vm in vms)
        {
            foreach (var state in States)
            {
                Sample(text, "hostvm_vm_state", Labels(("vm", vm.Name), ("state", state)), vm.State == state ? 1 : 0);
            }
        }

        Family(text, "hostvm_vm_vcpus", "gauge", "vCPUs the VM has.");
        Family(text, "hostvm_vm_memory_bytes", "gauge", "Guest RAM the VM has.");
        Family(text, "hostvm_vm_restarts_total", "counter", "Automatic restarts since the VM was last started by a user.");
        foreach (var vm in vms)
        {
            string l = Labels(("vm", vm.Name));
            Sample(text, "hostvm_vm_vcpus", l, vm.Vcpus);
            Sample(text, "hostvm_vm_memory_bytes", l, vm.MemoryMib << 20);
            Sample(text, "hostvm_vm_restarts_total", l, vm.Restarts);
        }

        var running = vms.Zip(stats).Where(p => p.Second is not null).Select(p => (Vm: p.First, Stats: p.Second!)).ToList();
        Counter(text, running, "hostvm_vm_uptime_seconds", "gauge", "Seconds since the VM's machine started.", s => s.UptimeMs / 1000.0);
        Counter(text, running, "hostvm_vm_instructions_retired_total", "counter", "Guest instructions retired.", s => s.InstructionsRetired);
        Counter(text, running, "hostvm_vm_cpu_seconds_total", "counter", "CPU time of the VMM process.", s => s.CpuTimeMs / 1000.0);
        Counter(text, running, "hostvm_vm_vcpu_seconds_total", "counter", "CPU time of the VM's hart threads.", s => s.VcpuTimeMs / 1000.0);
        Counter(text, running, "hostvm_vm_cpu_throttled_seconds_total", "counter", "Time the harts slept because of the CPU cap.", s => s.CpuThrottledMs / 1000.0);
        Counter(text, running, "hostvm_vm_rss_bytes", "gauge", "Resident memory of the VMM process (guest RAM it touched included).", s => s.HostRssBytes);

        Family(text, "hostvm_vm_disk_read_bytes_total", "counter", "Bytes the guest read from a drive.");
        Family(text, "hostvm_vm_disk_written_bytes_total", "counter", "Bytes the guest wrote to a drive.");
        Family(text, "hostvm_vm_disk_reads_total", "counter", "Read requests.");
        Family(text, "hostvm_vm_disk_writes_total", "counter", "Write requests.");
        Family(text, "hostvm_vm_disk_throttled_total", "counter", "Requests the drive's rate limiter held back.");
        foreach (var (vm, s) in running)
        {
            foreach (var d in s.Drives)
            {
                string l = Labels(("vm", vm.Name), ("drive", d.DriveId));
                Sample(text, "hostvm_vm_disk_read_bytes_total", l, d.BytesRead);
                Sample(text, "hostvm_vm_disk_written_bytes_total", l, d.BytesWritten);
                Sample(text, "hostvm_vm_disk_reads_total", l, d.Reads);
                Sample(text, "hostvm_vm_disk_writes_total", l, d.Writes);
                Sample(text, "hostvm_vm_disk_throttled_total", l, d.Throttled);
            }
        }

        Family(text, "hostvm_vm_net_receive_bytes_total", "counter", "Bytes delivered to the guest.");
        Family(text, "hostvm_vm_net_transmit_bytes_total", "counter", "Bytes the guest sent.");
        Family(text, "hostvm_vm_net_receive_packets_total", "counter", "Frames delivered to the guest.");
        Family(text, "hostvm_vm_net_transmit_packets_total", "counter", "Frames the guest sent.");
        Family(text, "hostvm_vm_net_dropped_total", "counter", "Frames dropped (either way).");
        foreach (var (vm, s) in running)
        {
            foreach (var n in s.NetworkInterfaces)
            {
                string l = Labels(("vm", vm.Name), ("interface", n.IfaceId));
                Sample(text, "hostvm_vm_net_receive_bytes_total", l, n.RxBytes);
                Sample(text, "hostvm_vm_net_transmit_bytes_total", l, n.TxBytes);
                Sample(text, "hostvm_vm_net_receive_packets_total", l, n.RxFrames);
                Sample(text, "hostvm_vm_net_transmit_packets_total", l, n.TxFrames);
                Sample(text, "hostvm_vm_net_dropped_total", l, n.RxDropped + n.TxDropped);
            }
        }

        return text.ToString();
    }

    private async Task<VmmStatistics?> ReadAsync(VmRecord vm)
    {
        if (vm.State is not (VmStates.Running or VmStates.Paused))
        {
            return null;
        }

        try
        {
            return await supervisor.ReadStatisticsAsync(vm, VmmTimeout).ConfigureAwait(false);
        }
        catch (Api.ApiProblem)
        {
            return null; // a VMM that does not answer now has no samples in this scrape
        }
    }

    private static void Counter(StringBuilder text, List<(VmRecord Vm, VmmStatistics Stats)> running, string name, string type, string help, Func<VmmStatistics, double> value)
    {
        Family(text, name, type, help);
        foreach (var (vm, s) in running)
        {
            Sample(text, name, Labels(("vm", vm.Name)), value(s));
        }
    }

    private static void Family(StringBuilder text, string name, string type, string help) =>
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
            .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Sample(StringBuilder text, string name, string labels, double value) =>
        text.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');

    /// <summary>{a="x",b="y"} with the text format's escapes (backslash, quote, newline).</summary>
    private static string Labels(params (string Name, string Value)[] labels) =>
        "{" + string.Join(',', labels.Select(l => $"{l.Name}=\"{l.Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"")) + "}";
}
