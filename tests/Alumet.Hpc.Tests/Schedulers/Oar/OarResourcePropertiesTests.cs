using Xunit;
using Alumet.Hpc.Schedulers.Oar;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

public sealed class OarResourcePropertiesTests
{
    /// <summary>
    /// Dumped from the OAR 2.5.9 lab (job with -l core=2 after `oarproperty -a gpudevice -c` and
    /// `oarnodesetting -r N -p gpudevice=N-1`): one resource per line, hash order, leading and trailing space.
    /// </summary>
    internal const string Lab259 =
        " cpu = '0' , host = 'localhost' , desktop_computing = 'NO' , gpudevice = '1' , core = '1' , drain = 'NO' , besteffort = 'YES' , type = 'default' , network_address = 'localhost' , deploy = 'NO' , available_upto = '2147483647' , cpuset = '1' , last_available_upto = '0' \n" +
        " cpu = '0' , besteffort = 'YES' , drain = 'NO' , core = '0' , gpudevice = '0' , desktop_computing = 'NO' , host = 'localhost' , available_upto = '2147483647' , deploy = 'NO' , network_address = 'localhost' , type = 'default' , last_available_upto = '0' , cpuset = '0' \n";

    /// <summary>Two nodes, 4 cores each, 2 GPUs per node shared by 2 cores; a licence resource without address.</summary>
    internal const string TwoNodes =
        " network_address = 'n1.cluster' , core = '0' , gpudevice = '0' , type = 'default' , cpuset = '0' \n" +
        " network_address = 'n1.cluster' , core = '1' , gpudevice = '0' , type = 'default' , cpuset = '1' \n" +
        " network_address = 'n1.cluster' , core = '2' , gpudevice = '1' , type = 'default' , cpuset = '2' \n" +
        " network_address = 'n2.cluster' , core = '0' , gpudevice = '3' , type = 'default' , cpuset = '0' \n" +
        " network_address = 'n2.cluster' , core = '1' , gpudevice = '' , type = 'default' , cpuset = '1' \n" +
        " network_address = '' , licence = 'matlab' , gpudevice = '7' , type = 'licence' \n";

    [Fact]
    public void Parses_the_lab_dump_exactly()
    {
        var rs = OarResourceProperties.Parse(Lab259);
        Assert.Equal(2, rs.Count);
        Assert.Equal(13, rs[0].Properties.Count);
        Assert.Equal("1", rs[0].Get("gpudevice"));
        Assert.Equal("1", rs[0].Get("cpuset"));
        Assert.Equal("0", rs[0].Get("last_available_upto"));
        Assert.Equal("localhost", rs[1].NetworkAddress);
        Assert.Equal("2147483647", rs[1].Get("available_upto"));
        Assert.Equal("0", rs[1].Get("cpuset"));
        Assert.Equal("default", rs[1].Type);
        Assert.Null(rs[1].Get("absent"));
    }

    [Fact]
    public void Gpu_devices_of_this_node_sorted_distinct()
    {
        Assert.Equal(new[] { 0, 1 }, OarResourceProperties.GpuDevices(OarResourceProperties.Parse(Lab259), "localhost"));
        var two = OarResourceProperties.Parse(TwoNodes);
        Assert.Equal(new[] { 0, 1 }, OarResourceProperties.GpuDevices(two, "n1.cluster"));
        Assert.Equal(new[] { 3 }, OarResourceProperties.GpuDevices(two, "n2.cluster"));   // '' skipped
        Assert.Empty(OarResourceProperties.GpuDevices(two, "n3.cluster"));
        Assert.Empty(OarResourceProperties.GpuDevices(two, ""));                           // the licence's 7 never counts
        Assert.Equal(new[] { "n1.cluster", "n2.cluster" }, OarResourceProperties.Nodes(two));
    }

    [Fact]
    public void No_gpudevice_property_means_no_gpu()
    {
        var rs = OarResourceProperties.Parse(" core = '0' , network_address = 'localhost' , cpuset = '0' \n");
        Assert.Empty(OarResourceProperties.GpuDevices(rs, "localhost"));
    }

    [Fact]
    public void Values_with_quotes_commas_and_spaces()
    {
        var rs = OarResourceProperties.Parse(" comment = 'it's a , b' , x = '1' , note = 'a' , b' , y = '' \r\n\n \n");
        Assert.Single(rs);
        Assert.Equal("it's a , b", rs[0].Get("comment"));
        Assert.Equal("1", rs[0].Get("x"));
        Assert.Equal("a' , b", rs[0].Get("note"));
        Assert.Equal("", rs[0].Get("y"));
    }

    [Fact]
    public void Malformed_lines_keep_what_was_read()
    {
        // A quote not followed by " , key = '" belongs to the value: the value runs to the last quote.
        var rs = OarResourceProperties.Parse(" a = '1' , garbage here\n b = 'unterminated\n c = '2' , d 'x' \n");
        Assert.Equal(3, rs.Count);
        Assert.Equal("1' , garbage here", rs[0].Get("a"));
        Assert.Single(rs[0].Properties);
        Assert.Equal("2' , d 'x", rs[2].Get("c"));
        Assert.Equal("unterminated", rs[1].Get("b"));
    }

    [Fact]
    public void Non_numeric_gpudevice_is_ignored()
    {
        var rs = OarResourceProperties.Parse(" network_address = 'n' , gpudevice = 'x' \n network_address = 'n' , gpudevice = ' 2 ' \n network_address = 'n' , gpudevice = '-1' \n");
        Assert.Equal(new[] { 2 }, OarResourceProperties.GpuDevices(rs, "n"));
    }
}
