using System.Text;
using HostVM.Machine.Boot;

namespace HostVM.Machine.Tests.Boot;

public class FdtWriterTests
{
    private static byte[] Sample()
    {
        var fdt = new FdtWriter { BootCpuId = 1 };
        fdt.AddMemoryReservation(0x8000_0000, 0x20_0000);
        fdt.BeginNode(string.Empty);
        fdt.Property("#address-cells", 2u);
        fdt.Property("model", "test,board");
        fdt.BeginNode("node");
        fdt.Property("flag");
        fdt.Property("cells", 1u, 2u, 0xFFFF_FFFFu);
        fdt.Property("wide", 0x1122_3344_5566_7788UL);
        fdt.Property("list", "a", "bc", string.Empty);
        fdt.Property("bytes", new byte[] { 1, 2, 3 });
        fdt.Property("model", "again"); // same name as the root's: shared in the strings block
        fdt.EndNode();
        fdt.BeginNode("empty");
        fdt.EndNode();
        fdt.EndNode();
        return fdt.ToArray();
    }

    [Fact]
    public void Header_and_blocks_round_trip()
    {
        var blob = FdtParser.Parse(Sample());

        Assert.Equal(17u, blob.Version);
        Assert.Equal(1u, blob.BootCpu);
        Assert.Equal([(0x8000_0000UL, 0x20_0000UL)], blob.Reservations);
        Assert.Equal("", blob.Root.Name);
        Assert.Equal([2u], blob.Root.Cells("#address-cells"));
        Assert.Equal(["test,board"], blob.Root.Strings("model"));

        var node = blob.Root.Child("node");
        Assert.Empty(node.Properties["flag"]);
        Assert.Equal([1u, 2u, 0xFFFF_FFFFu], node.Cells("cells"));
        Assert.Equal([0x1122_3344u, 0x5566_7788u], node.Cells("wide"));
        Assert.Equal("a\0bc\0\0"u8.ToArray(), node.Properties["list"]);
        Assert.Equal([1, 2, 3], node.Properties["bytes"]);
        Assert.Empty(blob.Root.Child("empty").Properties);
    }

    [Fact]
    public void Strings_block_holds_each_name_once()
    {
        byte[] blob = Sample();
        int strings = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(12));
        string block = Encoding.ASCII.GetString(blob, strings, blob.Length - strings);

        Assert.Equal("#address-cells\0model\0flag\0cells\0wide\0list\0bytes\0", block);
    }

    [Fact]
    public void Dtc_reads_it_back()
    {
        string dts = Dtc.Decompile(Sample());

        Assert.Contains("/memreserve/\t0x0000000080000000 0x0000000000200000;", dts, StringComparison.Ordinal);
        Assert.Contains("model = \"test,board\";", dts, StringComparison.Ordinal);
        Assert.Contains("cells = <0x01 0x02 0xffffffff>;", dts, StringComparison.Ordinal);
        Assert.Contains("wide = <0x11223344 0x55667788>;", dts, StringComparison.Ordinal);
        Assert.Contains("bytes = [01 02 03];", dts, StringComparison.Ordinal);
    }

    [Fact]
    public void Phandles_count_up_from_one()
    {
        var fdt = new FdtWriter();
        Assert.Equal(1u, fdt.AllocatePhandle());
        Assert.Equal(2u, fdt.AllocatePhandle());
    }

    [Fact]
    public void Misuse_is_reported()
    {
        var fdt = new FdtWriter();
        Assert.Throws<InvalidOperationException>(() => fdt.Property("x", 1u));
        Assert.Throws<ArgumentException>(() => fdt.BeginNode("root"));
        fdt.BeginNode(string.Empty);
        Assert.Throws<ArgumentException>(() => fdt.BeginNode("bad name"));
        Assert.Throws<ArgumentException>(() => fdt.BeginNode("a-name-that-is-much-longer-than-31"));
        Assert.Throws<ArgumentException>(() => fdt.Property("bad=name", 1u));
        Assert.Throws<ArgumentException>(() => fdt.Property("s", "nul\0inside"));
        fdt.Property("p", 1u);
        Assert.Throws<InvalidOperationException>(() => fdt.Property("p", 2u));
        fdt.BeginNode("child");
        Assert.Throws<InvalidOperationException>(fdt.ToArray);
        fdt.EndNode();
        Assert.Throws<InvalidOperationException>(() => fdt.BeginNode("child"));
        Assert.Throws<InvalidOperationException>(() => fdt.Property("late", 1u));
        fdt.EndNode();
        Assert.Throws<InvalidOperationException>(fdt.EndNode);
        Assert.Throws<InvalidOperationException>(() => fdt.BeginNode(string.Empty));
        Assert.NotEmpty(fdt.ToArray());
    }

    [Fact]
    public void Cells64_splits_high_then_low()
    {
        Assert.Equal([0u, 0x8000_0000u, 1u, 0u], FdtWriter.Cells64(0x8000_0000, 0x1_0000_0000));
    }
}
