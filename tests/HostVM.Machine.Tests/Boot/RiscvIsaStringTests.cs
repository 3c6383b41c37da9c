using HostVM.Machine.Boot;

namespace HostVM.Machine.Tests.Boot;

public class RiscvIsaStringTests
{
    [Theory]
    [InlineData("rv64imafdc_zicsr_zifencei_zicntr", "rv64i", "i m a f d c zicsr zifencei zicntr")]
    [InlineData("rv64gc", "rv64i", "i m a f d zicsr zifencei c")]
    [InlineData("RV64IMAC", "rv64i", "i m a c")]
    [InlineData("rv64i2p1m2p0a_zicsr2p0_sstc", "rv64i", "i m a zicsr sstc")]
    [InlineData("rv64imafdchzicsr_zba", "rv64i", "i m a f d c h zicsr zba")]
    public void Splits_into_base_and_extensions(string isa, string expectedBase, string expectedExtensions)
    {
        var (baseIsa, extensions) = RiscvIsaString.Split(isa);
        Assert.Equal(expectedBase, baseIsa);
        Assert.Equal(expectedExtensions.Split(' '), extensions);
    }

    [Fact]
    public void Rejects_what_is_not_an_isa_string()
    {
        Assert.Throws<ArgumentException>(() => RiscvIsaString.Split("x86_64"));
    }
}
