using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Supervision;

namespace HostVM.Host.Tests;

public sealed class SettingsAndRulesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-settings-").FullName;

    [Fact]
    public void FlagsBeatTheEnvironmentWhichBeatsTheFile()
    {
        string file = Path.Combine(_dir, "hostvm.json");
        File.WriteAllText(file, """{"data_dir": "/from/file", "memory_overcommit": 1.5, "cpu_overcommit": 2, "listen": ["127.0.0.1:9000"]}""");
        Environment.SetEnvironmentVariable("HOSTVM_CPU_OVERCOMMIT", "3");
        try
        {
            var s = HostSettings.Load(file, new Dictionary<string, string?> { ["data_dir"] = "/from/flag", ["runtime_dir"] = null });
            Assert.Equal("/from/flag", s.DataDir);
            Assert.Equal(1.5, s.MemoryOvercommit);
            Assert.Equal(3, s.CpuOvercommit);
            Assert.Equal(["127.0.0.1:9000"], s.Listen);
            Assert.Equal(["/from/flag/import"], s.ImportDirs);
        }
        finally
        {
            Environment.SetEnvironmentVariable("HOSTVM_CPU_OVERCOMMIT", null);
        }
    }

    [Fact]
    public void BadSettingsAreOneClearError()
    {
        Assert.Contains("no such file", Assert.Throws<HostSettingsException>(() => HostSettings.Load(Path.Combine(_dir, "none.json"), new Dictionary<string, string?>())).Message, StringComparison.Ordinal);
        Assert.Contains("memory_overcommit", Assert.Throws<HostSettingsException>(() => HostSettings.Load(null, new Dictionary<string, string?> { ["memory_overcommit"] = "lots" })).Message, StringComparison.Ordinal);
        Assert.Contains("serial_log_max_bytes 1000: must be a number from 65536", Assert.Throws<HostSettingsException>(() => HostSettings.Load(null, new Dictionary<string, string?> { ["serial_log_max_bytes"] = "1000" })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSerialLogCapDefaultsToOneMebibyte()
    {
        Assert.Equal(1L << 20, HostSettings.Load(null, new Dictionary<string, string?>()).SerialLogMaxBytes);
        Assert.Equal(65536, HostSettings.Load(null, new Dictionary<string, string?> { ["serial_log_max_bytes"] = "65536" }).SerialLogMaxBytes);
    }

    [Theory]
    [InlineData("web-1", true)]
    [InlineData("a", true)]
    [InlineData("Web", false)]
    [InlineData("1web", false)]
    [InlineData("web_1", false)]
    [InlineData("../x", false)]
    [InlineData("", false)]
    public void NamesAreLowerCaseLettersDigitsAndDashes(string name, bool ok)
    {
        if (ok)
        {
            Assert.Equal(name, Names.Check(name, "name"));
        }
        else
        {
            Assert.Equal(400, Assert.Throws<ApiProblem>(() => Names.Check(name, "name")).Status);
        }
    }

    [Theory]
    [InlineData(100, null)]
    [InlineData(200, -3)]
    [InlineData(50, 3)]
    [InlineData(1, 19)]
    [InlineData(10000, -20)]
    public void CpuWeightBecomesANiceValue(int weight, int? nice) => Assert.Equal(nice, VmmLauncher.Nice(weight));

    [Fact]
    public void AdmissionCountsOnlyVmsThatHoldAProcess()
    {
        var settings = HostSettings.Load(null, new Dictionary<string, string?> { ["data_dir"] = _dir, ["cpu_overcommit"] = "1", ["memory_reserve_mib"] = "0" });
        var resources = new HostResources(settings);
        var capacity = resources.Capacity();
        VmRecord Vm(string id, string state, int vcpus, long mib) => new() { Id = id, Name = id, Image = "i", State = state, Vcpus = vcpus, MemoryMib = mib };
        var running = Vm("a", VmStates.Running, capacity.Vcpus - 1, 64);
        var stopped = Vm("b", VmStates.Stopped, 8, capacity.MemoryMib);
        resources.Admit(Vm("c", VmStates.Stopped, 1, 64), [running, stopped]);
        var e = Assert.Throws<ApiProblem>(() => resources.Admit(Vm("c", VmStates.Stopped, 2, 64), [running, stopped]));
        Assert.Equal(409, e.Status);
        Assert.True(e.Errors!.ContainsKey("vcpus"));
        Assert.False(e.Errors.ContainsKey("memory_mib"));
        var m = Assert.Throws<ApiProblem>(() => resources.Admit(Vm("c", VmStates.Stopped, 1, capacity.MemoryMib), [running]));
        Assert.True(m.Errors!.ContainsKey("memory_mib"));
        Assert.Equal(capacity.Vcpus - 1, resources.Allocated([running, stopped]).Vcpus);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
