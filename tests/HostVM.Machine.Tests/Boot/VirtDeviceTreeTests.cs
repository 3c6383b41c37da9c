using System.Text.RegularExpressions;
using HostVM.Machine.Boot;

namespace HostVM.Machine.Tests.Boot;

public partial class VirtDeviceTreeTests
{
    private static readonly VirtBoardDescription Board = new(2, 0x8000_0000, 0x1000_0000, "rv64imafdc_zicsr_zifencei_zicntr", "riscv,sv57")
    {
        BootArgs = "console=ttyS0 earlycon",
        InitrdStart = 0x8820_0000,
        InitrdEnd = 0x8835_55c6,
        VirtioSlots = [new VirtioMmioSlot(0x1000_1000, 1), new VirtioMmioSlot(0x1000_2000, 2)],
        RngSeed = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(),
    };

    [GeneratedRegex(@"^\s*(?<name>[^\s=]+)\s*=\s*(?<value>.*);\s*$")]
    private static partial Regex PropertyLine();

    /// <summary>dtc's text output as path → property → value text (values exactly as dtc prints them).</summary>
    private static Dictionary<string, Dictionary<string, string>> ParseDts(string dts)
    {
        var nodes = new Dictionary<string, Dictionary<string, string>>();
        var path = new Stack<string>();
        foreach (string raw in dts.Split('\n'))
        {
            string line = raw.Trim();
            if (line.EndsWith('{'))
            {
                string name = line[..^1].Trim();
                path.Push(name == "/" ? string.Empty : name);
                nodes[Current()] = [];
            }
            else if (line == "};")
            {
                path.Pop();
            }
            else if (PropertyLine().Match(line) is { Success: true } m)
            {
                nodes[Current()][m.Groups["name"].Value] = m.Groups["value"].Value;
            }
            else if (line.EndsWith(';') && !line.StartsWith('/'))
            {
                nodes[Current()][line.TrimEnd(';')] = string.Empty; // a flag property
            }
        }

        return nodes;

        string Current() => "/" + string.Join('/', path.Reverse().Where(p => p.Length > 0));
    }

    [Fact]
    public void Dtc_accepts_the_board_without_warnings_and_sees_every_key_property()
    {
        var dts = ParseDts(Dtc.Decompile(VirtDeviceTree.Build(Board)));

        Assert.Equal("<0x02>", dts["/"]["#address-cells"]);
        Assert.Equal("\"riscv-virtio\"", dts["/"]["compatible"]);

        Assert.Equal("\"console=ttyS0 earlycon\"", dts["/chosen"]["bootargs"]);
        Assert.Equal("\"/soc/serial@10000000\"", dts["/chosen"]["stdout-path"]);
        Assert.Equal("<0x00 0x88200000>", dts["/chosen"]["linux,initrd-start"]);
        Assert.Equal("<0x00 0x883555c6>", dts["/chosen"]["linux,initrd-end"]);
        Assert.Equal("<0x10203 0x4050607 0x8090a0b 0xc0d0e0f 0x10111213 0x14151617 0x18191a1b 0x1c1d1e1f>", dts["/chosen"]["rng-seed"]);

        Assert.Equal("\"memory\"", dts["/memory@80000000"]["device_type"]);
        Assert.Equal("<0x00 0x80000000 0x00 0x10000000>", dts["/memory@80000000"]["reg"]);

        Assert.Equal("<0x989680>", dts["/cpus"]["timebase-frequency"]);
        foreach (int hart in new[] { 0, 1 })
        {
            var cpu = dts[$"/cpus/cpu@{hart}"];
            Assert.Equal($"<0x{hart:x2}>", cpu["reg"]);
            Assert.Equal("\"cpu\"", cpu["device_type"]);
            Assert.Equal("\"okay\"", cpu["status"]);
            Assert.Equal("\"riscv\"", cpu["compatible"]);
            Assert.Equal("\"rv64imafdc_zicsr_zifencei_zicntr\"", cpu["riscv,isa"]);
            Assert.Equal("\"rv64i\"", cpu["riscv,isa-base"]);
            Assert.Equal("\"i\\0m\\0a\\0f\\0d\\0c\\0zicsr\\0zifencei\\0zicntr\"", cpu["riscv,isa-extensions"]);
            Assert.Equal("\"riscv,sv57\"", cpu["mmu-type"]);

            var intc = dts[$"/cpus/cpu@{hart}/interrupt-controller"];
            Assert.Equal("\"riscv,cpu-intc\"", intc["compatible"]);
            Assert.Equal("<0x01>", intc["#interrupt-cells"]);
            Assert.True(intc.ContainsKey("interrupt-controller"));
            Assert.Equal(cpuPhandleOf(hart), dts[$"/cpus/cpu-map/cluster0/core{hart}"]["cpu"]);
        }

        string intc0 = dts["/cpus/cpu@0/interrupt-controller"]["phandle"].Trim('<', '>');
        string intc1 = dts["/cpus/cpu@1/interrupt-controller"]["phandle"].Trim('<', '>');

        var clint = dts["/soc/clint@2000000"];
        Assert.Equal("\"sifive,clint0\\0riscv,clint0\"", clint["compatible"]);
        Assert.Equal("<0x00 0x2000000 0x00 0x10000>", clint["reg"]);
        Assert.Equal($"<{intc0} 0x03 {intc0} 0x07 {intc1} 0x03 {intc1} 0x07>", clint["interrupts-extended"]);

        var plic = dts["/soc/plic@c000000"];
        Assert.Equal("\"sifive,plic-1.0.0\\0riscv,plic0\"", plic["compatible"]);
        Assert.Equal("<0x5f>", plic["riscv,ndev"]);
        Assert.Equal("<0x01>", plic["#interrupt-cells"]);
        Assert.Equal("<0x00>", plic["#address-cells"]);
        Assert.True(plic.ContainsKey("interrupt-controller"));
        Assert.Equal($"<{intc0} 0x0b {intc0} 0x09 {intc1} 0x0b {intc1} 0x09>", plic["interrupts-extended"]);
        string plicPhandle = plic["phandle"];

        var serial = dts["/soc/serial@10000000"];
        Assert.Equal("\"ns16550a\"", serial["compatible"]);
        Assert.Equal("<0x00 0x10000000 0x00 0x100>", serial["reg"]);
        Assert.Equal("<0x0a>", serial["interrupts"]);
        Assert.Equal(plicPhandle, serial["interrupt-parent"]);
        Assert.Equal("\"\\08@\"", serial["clock-frequency"]); // dtc prints 0x00384000 as a string, as for QEMU's

        var test = dts["/soc/test@100000"];
        Assert.Equal("\"sifive,test1\\0sifive,test0\\0syscon\"", test["compatible"]);
        Assert.Equal("<0x00 0x100000 0x00 0x1000>", test["reg"]);
        Assert.Equal(test["phandle"], dts["/poweroff"]["regmap"]);
        Assert.Equal("<0x5555>", dts["/poweroff"]["value"]);
        Assert.Equal("<0x00>", dts["/poweroff"]["offset"]);
        Assert.Equal("\"syscon-poweroff\"", dts["/poweroff"]["compatible"]);
        Assert.Equal(test["phandle"], dts["/reboot"]["regmap"]);
        Assert.Equal("<0x7777>", dts["/reboot"]["value"]);
        Assert.Equal("\"syscon-reboot\"", dts["/reboot"]["compatible"]);

        var rtc = dts["/soc/rtc@101000"];
        Assert.Equal("\"google,goldfish-rtc\"", rtc["compatible"]);
        Assert.Equal("<0x0b>", rtc["interrupts"]);
        Assert.Equal(plicPhandle, rtc["interrupt-parent"]);

        var virtio = dts["/soc/virtio_mmio@10002000"];
        Assert.Equal("\"virtio,mmio\"", virtio["compatible"]);
        Assert.Equal("<0x00 0x10002000 0x00 0x1000>", virtio["reg"]);
        Assert.Equal("<0x02>", virtio["interrupts"]);
        Assert.Equal(plicPhandle, virtio["interrupt-parent"]);

        Assert.DoesNotContain(dts.Keys, k => k.Contains("pci", StringComparison.Ordinal) || k.Contains("flash", StringComparison.Ordinal) ||
            k.Contains("fw-cfg", StringComparison.Ordinal) || k.Contains("platform-bus", StringComparison.Ordinal));

        string cpuPhandleOf(int hart) => dts[$"/cpus/cpu@{hart}"]["phandle"];
    }

    [Fact]
    public void Phandles_are_unique_and_every_reference_resolves()
    {
        var root = FdtParser.Parse(VirtDeviceTree.Build(Board with { HartCount = 4 })).Root;
        var phandles = new Dictionary<uint, FdtParser.Node>();
        Walk(root, n =>
        {
            if (n.Properties.ContainsKey("phandle"))
            {
                phandles.Add(n.Cells("phandle").Single(), n);
            }
        });

        Walk(root, n =>
        {
            if (n.Properties.ContainsKey("interrupt-parent"))
            {
                Assert.True(phandles[n.Cells("interrupt-parent").Single()].Properties.ContainsKey("interrupt-controller"));
            }

            if (n.Properties.ContainsKey("interrupts-extended"))
            {
                uint[] cells = n.Cells("interrupts-extended");
                Assert.Equal(16, cells.Length); // 4 harts x 2 interrupts x (phandle, number)
                for (int i = 0; i < cells.Length; i += 2)
                {
                    Assert.Equal("riscv,cpu-intc", phandles[cells[i]].Strings("compatible").Single());
                }
            }
        });

        Assert.Equal(4, root.At("cpus/cpu-map/cluster0").Children.Count);
    }

    [Fact]
    public void Optional_chosen_properties_are_left_out_when_not_given()
    {
        var board = new VirtBoardDescription(1, 0x8000_0000, 0x800_0000, "rv64imafdc", "riscv,sv39");
        var chosen = FdtParser.Parse(VirtDeviceTree.Build(board)).Root.Child("chosen");

        Assert.False(chosen.Properties.ContainsKey("bootargs"));
        Assert.False(chosen.Properties.ContainsKey("linux,initrd-start"));
        Assert.Equal(32, chosen.Properties["rng-seed"].Length);
        Assert.Equal(["/soc/serial@10000000"], chosen.Strings("stdout-path"));
    }

    [Fact]
    public void Random_seed_differs_between_builds()
    {
        var board = Board with { RngSeed = null };
        var first = FdtParser.Parse(VirtDeviceTree.Build(board)).Root.Child("chosen").Properties["rng-seed"];
        var second = FdtParser.Parse(VirtDeviceTree.Build(board)).Root.Child("chosen").Properties["rng-seed"];
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Many_harts_get_hex_unit_addresses()
    {
        var root = FdtParser.Parse(VirtDeviceTree.Build(Board with { HartCount = 12 })).Root;
        Assert.Equal([0xBu], root.At("cpus/cpu@b").Cells("reg"));
        Dtc.Decompile(VirtDeviceTree.Build(Board with { HartCount = 12 }));
    }

    [Fact]
    public void Bad_descriptions_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => VirtDeviceTree.Build(Board with { HartCount = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => VirtDeviceTree.Build(Board with { RamSize = 0 }));
        Assert.Throws<ArgumentException>(() => VirtDeviceTree.Build(Board with { InitrdEnd = null }));
        Assert.Throws<ArgumentException>(() => VirtDeviceTree.Build(Board with { IsaString = "rv32imac" }));
        Assert.Throws<ArgumentException>(() => VirtDeviceTree.Build(Board with { VirtioSlots = [new VirtioMmioSlot(0x1000_1000, 0)] }));
        Assert.Throws<ArgumentException>(() => VirtDeviceTree.Build(Board with
        {
            VirtioSlots = [new VirtioMmioSlot(0x1000_1000, 1), new VirtioMmioSlot(0x1000_1000, 2)],
        }));
    }

    private static void Walk(FdtParser.Node node, Action<FdtParser.Node> visit)
    {
        visit(node);
        foreach (var child in node.Children)
        {
            Walk(child, visit);
        }
    }
}
